"""The short version of `make chaos`: one Redis kill and one PostgreSQL stop on a private
`redis-server` and a private PostgreSQL cluster, under two real instances in token mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import chaos

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(480)]


def test_faults_keep_decisions_correct_and_recover(tmp_path: Path) -> None:
    summary, report = chaos.run(iterations=1, window=3.0, out_dir=tmp_path)
    assert report.exists() and "casbin.Enforcer" in report.read_text()
    faults = {f["fault"]: f for f in summary["faults"]}
    assert set(faults) == {"baseline", "redis kill", "postgres stop"}, faults
    for fault in summary["faults"]:
        assert fault["decisions_checked"] > 0, fault
        assert fault["wrong_decisions"] == 0, fault["wrong_examples"]
        assert fault["decision_failures"] == 0, fault["answers"]
        assert fault["http_500"] == 0, fault["answers"]
        assert fault["problems"] == [], fault["problems"]

    redis = faults["redis kill"]
    assert redis["recovery_s"] is not None, redis  # the cache is back without a restart
    assert redis["answers"]["login"] == {"200": redis["answers"]["login"]["200"]}, redis

    pg = faults["postgres stop"]
    # logins and refreshes got only clean 503s during the outage, then worked again
    assert pg["answers"]["login"] == {"503": pg["answers"]["login"]["503"]}, pg["answers"]
    assert pg["answers"]["refresh"] == {"503": pg["answers"]["refresh"]["503"]}, pg["answers"]
    assert set(pg["readyz_during_outage"]) == {"200"}, pg  # still deciding: still ready
    assert pg["recovery_s"] is not None and pg["answers"]["refresh after"] == {"200": 2}, pg
    # the write tried during the outage ends applied exactly once (checked in the database)
    # (a retry may first be told 409 + Retry-After while the failed write's key is released)
    assert pg["answers"]["admin write retry"].keys() <= {"200", "201", "409"}, pg["answers"]
    assert pg["reconverged_s"] is not None, pg
    assert summary["ok"] is True
