"""`policy push` and `policy pull` between the policy files and `casbin_rule`."""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, select

from app.store.database import sync_url
from app.store.models import AuditEvent, CasbinRule, PolicyState
from tests.policy.support import FIXTURES, run_cli

pytestmark = pytest.mark.integration


def db_state(url: str) -> tuple[set[tuple[str, ...]], list[AuditEvent], int]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(CasbinRule)).all()
            rules = {
                (r.ptype, *[v for v in (r.v0, r.v1, r.v2, r.v3, r.v4, r.v5) if v]) for r in rows
            }
            audit = list(conn.execute(select(AuditEvent)).all())
            revision = conn.scalar(select(PolicyState.revision))
    finally:
        engine.dispose()
    return rules, audit, int(revision or 0)  # type: ignore[return-value]


def file_rules(path: Path) -> set[tuple[str, ...]]:
    out = set()
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            out.add(tuple(v.strip() for v in line.split(",")))
    return out


def test_push_dry_run_then_push_then_change(database_url: str, policy_dir: Path) -> None:
    env = {"OMS_AUTH_DATABASE_URL": database_url, "OMS_AUTH_POLICY_SOURCE": "db"}
    csv = policy_dir / "policy.csv"
    wanted = file_rules(csv)

    dry = run_cli("policy", "push", str(policy_dir), "--dry-run", env=env)
    assert dry.exit_code == 0, dry.output
    assert f"{len(wanted)} to add, 0 to remove (dry run: nothing written)" in dry.output
    assert "+ p, developer, api:schemas, write, allow" in dry.output
    assert db_state(database_url) == (set(), [], 0)

    pushed = run_cli("policy", "push", str(policy_dir), env=env)
    assert pushed.exit_code == 0, pushed.output
    rules, audit, revision = db_state(database_url)
    assert rules == wanted and revision == 1
    assert [(e.action, e.source, e.actor) for e in audit] == [
        ("policy.pushed", "cli", f"cli:{getpass.getuser()}")
    ]
    assert "policy revision 1" in pushed.output

    again = run_cli("policy", "push", str(policy_dir), env=env)
    assert "nothing to do" in again.output and db_state(database_url)[2] == 1

    text = csv.read_text().replace("p, auditor, api:audit, read, allow\n", "")
    csv.write_text(text + "p, auditor, api:reports, read, allow\n")
    dry = run_cli("policy", "push", str(policy_dir), "--dry-run", env=env)
    assert "- p, auditor, api:audit, read, allow  (db)" in dry.output
    assert "+ p, auditor, api:reports, read, allow" in dry.output
    assert db_state(database_url)[0] == wanted
    assert run_cli("policy", "push", str(policy_dir), env=env).exit_code == 0
    rules, audit, revision = db_state(database_url)
    assert rules == file_rules(csv) and revision == 2 and len(audit) == 2


def test_push_refuses_a_policy_with_lint_errors(sqlite_url: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURES / "lint" / "broken", broken)
    env = {"OMS_AUTH_DATABASE_URL": sqlite_url, "OMS_AUTH_POLICY_SOURCE": "db"}
    result = run_cli("policy", "push", str(broken), env=env)
    assert result.exit_code == 1 and "lint errors" in result.output
    assert db_state(sqlite_url) == (set(), [], 0)


def test_pull_keeps_comments_and_writes_only_without_dry_run(
    database_url: str, policy_dir: Path, tmp_path: Path
) -> None:
    env = {"OMS_AUTH_DATABASE_URL": database_url, "OMS_AUTH_POLICY_SOURCE": "db"}
    assert run_cli("policy", "push", str(policy_dir), env=env).exit_code == 0
    engine = create_engine(sync_url(database_url))
    with engine.begin() as conn:
        conn.execute(insert(CasbinRule).values(ptype="g", v0="zoe", v1="auditor"))
        conn.execute(
            CasbinRule.__table__.delete().where(  # type: ignore[attr-defined]
                CasbinRule.v0 == "bob", CasbinRule.ptype == "g"
            )
        )
        stored = conn.scalar(select(func.count()).select_from(CasbinRule))
    engine.dispose()
    csv = tmp_path / "pulled.csv"  # outside the policy folder: a copy to review
    shutil.copy(policy_dir / "policy.csv", csv)
    before = csv.read_text()
    out = ["-o", str(csv)]

    dry = run_cli("policy", "pull", str(policy_dir), *out, "--dry-run", env=env)
    assert dry.exit_code == 0, dry.output
    assert "- g, bob, viewer" in dry.output and "+ g, zoe, auditor  (db)" in dry.output
    assert "1 to add, 1 to remove (dry run: nothing written)" in dry.output
    assert csv.read_text() == before

    pulled = run_cli("policy", "pull", str(policy_dir), *out, env=env)
    assert pulled.exit_code == 0, pulled.output
    after = csv.read_text()
    assert after.startswith("# Shipped RBAC policy")  # comments and order kept
    assert "g, bob, viewer" not in after
    assert after.endswith("# pulled from the database\ng, zoe, auditor\n")
    assert len(file_rules(csv)) == stored
    assert "nothing to do" in run_cli("policy", "pull", str(policy_dir), *out, env=env).output


def test_pull_refuses_to_write_where_rules_are_loaded(sqlite_url: str, policy_dir: Path) -> None:
    env = {"OMS_AUTH_DATABASE_URL": sqlite_url, "OMS_AUTH_POLICY_DIR": str(policy_dir)}
    before = sorted(p.name for p in policy_dir.iterdir())
    inside = run_cli(
        "policy", "pull", str(policy_dir), "-o", str(policy_dir / "runtime.csv"), env=env
    )
    assert inside.exit_code == 1 and "loaded as policy" in inside.output
    missing = run_cli("policy", "pull", str(policy_dir), env=env)
    assert missing.exit_code == 2 and "-o FILE" in missing.output
    assert sorted(p.name for p in policy_dir.iterdir()) == before
    assert run_cli("policy", "lint", "--strict", str(policy_dir)).exit_code == 0


def test_push_refuses_under_files_and_db(sqlite_url: str, policy_dir: Path) -> None:
    env = {"OMS_AUTH_DATABASE_URL": sqlite_url, "OMS_AUTH_POLICY_SOURCE": "files+db"}
    result = run_cli("policy", "push", str(policy_dir), env=env)
    assert result.exit_code == 1 and "OMS_AUTH_POLICY_SOURCE=db" in result.output
    assert db_state(sqlite_url) == (set(), [], 0)
