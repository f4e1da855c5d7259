"""`oms-auth users import`: thousands of users in one process, one transaction, one policy
revision, every creation audited; a bad file writes nothing."""

from __future__ import annotations

from pathlib import Path

import orjson
from argon2 import PasswordHasher
from sqlalchemy import func, select

from app.config import Settings
from app.store.models import AuditEvent, CasbinRule, PolicyState, User
from tests.conftest import SettingsFactory
from tests.integration.test_cli_auth import _query, _run

PASSWORD = "imported password 1"


def _counts(settings: Settings) -> tuple[int, int, int, int]:
    users = _query(settings, select(func.count()).select_from(User))[0][0]
    rules = _query(settings, select(func.count()).select_from(CasbinRule))[0][0]
    audit = _query(
        settings,
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.created"),
    )[0][0]
    revision = _query(settings, select(PolicyState.revision))[0][0]
    return users, rules, audit, revision


def test_thousands_of_users_take_one_revision(
    make_settings: SettingsFactory, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url=database_url)
    ready_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    lines = []
    for i in range(2000):
        row: dict[str, object] = {"username": f"user{i:04d}", "roles": ["viewer"]}
        if i % 10 == 0:  # some passwords hashed here, the rest given as argon2 hashes
            row["password"] = PASSWORD
        else:
            row["password_hash"] = ready_hash
        if i == 7:
            row.update(roles=["developer", "viewer"], attributes={"team": "core"})
        lines.append(orjson.dumps(row).decode())
    path = tmp_path / "users.jsonl"
    path.write_text("\n".join(lines) + "\n")
    users, rules, audit, revision = _counts(settings)

    r = _run(settings, "users", "import", str(path))
    assert r.exit_code == 0, r.output
    assert "imported 2000 users" in r.output
    assert _counts(settings) == (users + 2000, rules + 2001, audit + 2000, revision + 1)
    (stored,) = _query(settings, select(User).where(User.username == "user0007"))
    assert stored[0].attributes == {"team": "core"}
    (hashed,) = _query(settings, select(User.password_hash).where(User.username == "user0010"))
    PasswordHasher().verify(hashed[0], PASSWORD)

    again = _run(settings, "users", "import", str(path))
    assert again.exit_code == 2 and "already exist" in again.output
    skipped = _run(settings, "users", "import", "--skip-existing", str(path))
    assert skipped.exit_code == 0 and "nothing to import" in skipped.output
    assert _counts(settings)[3] == revision + 1


def test_csv_and_a_bad_file_writes_nothing(make_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_settings()
    good = tmp_path / "users.csv"
    good.write_text(
        "username,password,roles,is_admin\n"
        f"ann,{PASSWORD},viewer;developer,false\n"
        f"ben,{PASSWORD},,true\n"
    )
    before = _counts(settings)
    r = _run(settings, "users", "import", str(good))
    assert r.exit_code == 0, r.output
    assert _counts(settings)[0] == before[0] + 2 and _counts(settings)[3] == before[3] + 1

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "username,password,roles\n"
        f"carl,{PASSWORD},viewer\n"
        "bad name,short,viewer\n"
        f"carl,{PASSWORD},viewer\n"
    )
    after_good = _counts(settings)
    r = _run(settings, "users", "import", str(bad))
    assert r.exit_code == 2
    assert "line 3" in r.output and "line 4" in r.output and "Traceback" not in r.output
    unknown = tmp_path / "unknown.csv"
    unknown.write_text(f"username,password,roles\ndan,{PASSWORD},no-such-role\n")
    r = _run(settings, "users", "import", str(unknown))
    assert r.exit_code == 2 and "no-such-role" in r.output
    assert _counts(settings) == after_good
