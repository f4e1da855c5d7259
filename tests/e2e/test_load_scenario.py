"""The short version of `make load`: the same scenario (two instances on PostgreSQL + Redis,
users created by one import, every decision checked against casbin.Enforcer), few users."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import scenario
from tests.support import services as svc

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(480)]


def test_short_load_scenario_decides_correctly(tmp_path: Path) -> None:
    summary, report = scenario.run(
        users=20,
        duration=20,
        instances=2,
        refresh_every=3,
        ramp=5,
        out_dir=tmp_path,
        pg_admin=svc.PG_ADMIN_DSN,
        redis_url=svc.REDIS_URL,
        # OMS_AUTH_TEST_DB_PREFIX: the run's cleanup drops it even if this test is killed
        database=svc.new_db_name("load_"),
    )
    assert report.exists() and "casbin.Enforcer" in report.read_text()
    ops = summary["operations"]
    assert summary["decisions_checked"] > 0, summary
    assert summary["wrong_decisions"] == 0, summary["wrong_examples"]
    assert summary["decision_5xx"] == 0, ops
    # logins end in a token or a refusal that says when to retry, never in a 500
    assert not [a for a in ops["login"]["answers"] if a.startswith("500")], ops["login"]
