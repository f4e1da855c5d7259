"""The `oms-auth` command: migrate, check, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.support.server import run_cli


def test_migrate_then_check_explain(tmp_path: Path) -> None:
    env = {"OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    migrated = run_cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "0001_initial" in migrated.stdout or "revision" in migrated.stdout
    allowed = run_cli("check", "alice", "api:schemas", "write", "--explain", env=env)
    assert allowed.returncode == 0, allowed.stderr
    body = orjson.loads(allowed.stdout)
    assert body["allowed"] is True and body["explain"]["role_path"] == ["alice", "developer"]
    denied = run_cli("check", "bob", "api:schemas", "write", env=env)
    assert denied.returncode == 1 and orjson.loads(denied.stdout) == {"allowed": False}


def test_bad_setting_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = run_cli("serve", env={"OMS_AUTH_PORT": "not-a-port"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "OMS_AUTH_PORT" in lines[0] and "Traceback" not in result.stderr


def test_serve_refuses_unmigrated_database(tmp_path: Path) -> None:
    result = run_cli("serve", env={"OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/new.db"})
    assert result.returncode == 2
    assert "oms-auth migrate" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_broken_policy(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "model.conf").write_text("[request_definition]\nr = sub, obj, act\n")
    env = {
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
        "OMS_AUTH_POLICY_DIR": str(policies),
    }
    assert run_cli("migrate", env=env).returncode == 0
    result = run_cli("serve", env=env)
    assert result.returncode == 2 and "policy rejected" in result.stderr
    assert "missing section" in result.stderr


def test_check_selects_definitions_and_context_tokens(tmp_path: Path) -> None:
    fidelity = Path(__file__).resolve().parents[2] / "policies" / "fidelity"
    env = {"OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    assert run_cli("migrate", env=env).returncode == 0
    ctx = {**env, "OMS_AUTH_POLICY_DIR": str(fidelity / "enforce_context")}
    r2 = run_cli("check", "ben", "-", "restart", "--definition", "r2", "--explain", env=ctx)
    assert r2.returncode == 0, r2.stderr
    assert orjson.loads(r2.stdout)["explain"]["definition"]["matcher"] == "m2"
    assert run_cli("check", "ben", "-", "restart", env=ctx).returncode == 1  # r/p/m: denied
    abac = {**env, "OMS_AUTH_POLICY_DIR": str(fidelity / "abac_context")}
    office = run_cli("check", "ann", "vault", "open", "--context", "env=office", env=abac)
    assert office.returncode == 0, office.stderr
    assert (
        run_cli("check", "ann", "vault", "open", "--context", "env=home", env=abac).returncode == 1
    )
    missing = run_cli("check", "ann", "vault", "open", env=abac)
    assert missing.returncode == 2 and "context" in missing.stderr
