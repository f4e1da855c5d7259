"""`oms-auth serve --workers 2` on PostgreSQL and Redis: one service, not two halves.

Each test talks to a chosen worker (tests.support.workers) so that "made through one worker,
seen by the other" is what is really exercised, not whatever the kernel picked.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import POLICY_DIR
from tests.support import services as svc
from tests.support.server import Server, run_cli, serve
from tests.support.waiting import wait_until
from tests.support.workers import WorkerClient, worker_pids

# Generous: several server processes start on a machine whose cores may all be busy.
pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(400)]

KEY = "w" * 32
ADMIN = {"X-API-Key": KEY}
PASSWORD = "correct-horse-battery-staple"
ZOE_WRITES = {"subject": "zoe", "resource": "api:schemas", "action": "write"}
CHECK = {"subject": "alice", "resource": "api:schemas", "action": "write"}


def env_for(pg_url: str, redis_url: str, service_name: str, policy_dir: Path) -> dict[str, str]:
    return {
        "OMS_AUTH_DATABASE_URL": pg_url,
        "OMS_AUTH_REDIS_URL": redis_url,
        "OMS_AUTH_SERVICE_NAME": service_name,
        "OMS_AUTH_POLICY_DIR": str(policy_dir),
        "OMS_AUTH_POLICY_WATCH": "false",
        "OMS_AUTH_ADMIN_API_KEY": KEY,
        "OMS_AUTH_BOOTSTRAP_ADMIN": f"root:{PASSWORD}",
        "OMS_AUTH_RATE_LIMIT_LOGIN_IP": "5/minute",  # failed logins per client address
        "OMS_AUTH_LOGIN_FREE_FAILURES": "1000",  # the per-account back-off stays out of it
        "OMS_AUTH_LOG_LEVEL": "INFO",
        "OMS_AUTH_WORKERS": "2",
    }


@pytest.fixture(scope="module")
def env(pg_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One database, Redis prefix and policy copy for the module (servers are costly)."""
    name = svc.new_db_name("w")
    url = svc.create_pg_database(name, template=pg_template)
    service = f"oms-auth-test-{svc.RUN_ID.replace('_', '-')}-{secrets.token_hex(3)}"
    policy_dir = tmp_path_factory.mktemp("workers") / "policies"
    shutil.copytree(POLICY_DIR, policy_dir, ignore=shutil.ignore_patterns("examples", "tests"))
    yield env_for(url, svc.REDIS_URL, service, policy_dir)
    svc.delete_redis_prefix(service + ":")
    svc.drop_pg_database(name)


@pytest.fixture(scope="module")
def server(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(env, log_dir=tmp_path_factory.mktemp("logs"), timeout=120) as srv:
        wait_until(lambda: len(worker_pids(srv)) == 2, timeout=60)
        yield srv


@pytest.fixture
def workers(server: Server) -> Iterator[tuple[WorkerClient, WorkerClient]]:
    a, b = (WorkerClient(server, pid) for pid in worker_pids(server))
    # both answer before the test starts (a worker accepts only once its start-up is done)
    for client in (a, b):
        status, _ = client.request("GET", "/readyz")
        assert status == 200
    yield a, b
    a.close()
    b.close()


def scrape(client: WorkerClient) -> dict[str, float]:
    """`name{labels}` -> value for every sample of /metrics as this worker renders it."""
    status, text = client.request("GET", "/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def checks_counted(samples: dict[str, float]) -> float:
    return sum(
        value
        for name, value in samples.items()
        if name.startswith("oms_auth_http_requests_total{") and "route=/api/v1/authz/check," in name
    )


def test_metrics_are_one_view_of_the_process_group(
    workers: tuple[WorkerClient, WorkerClient],
) -> None:
    a, b = workers
    sent = 0
    seen: list[float] = []
    for round_ in range(10):
        for client in (a, b):  # every round, both workers serve some checks
            for _ in range(round_ + 1):
                status, answer = client.request("POST", "/api/v1/authz/check", CHECK)
                assert status == 200 and answer["allowed"] is True
                sent += 1
        scraper = (a, b)[round_ % 2]  # whichever worker renders, it is the whole group

        def caught_up(scraper: WorkerClient = scraper, sent: int = sent) -> bool:
            value = checks_counted(scrape(scraper))
            assert not seen or value >= seen[-1], "a counter went backwards"
            assert value <= sent
            seen.append(value)
            return value == sent

        wait_until(caught_up, timeout=10)
    assert seen[-1] == sent == 110
    assert seen == sorted(seen)
    samples = scrape(a)
    assert samples["oms_auth_workers{}"] == 2
    assert samples["oms_auth_worker_starts_total{}"] == 2
    assert samples["process_cpu_seconds_total{}"] > 0
    assert samples["process_resident_memory_bytes{}"] > 2 * 20_000_000  # two Python processes
    revision = [v for k, v in samples.items() if k.startswith("oms_auth_policy_revision{")]
    assert len(revision) == 1 and revision[0] >= 1  # one series for the group


def test_changes_through_one_worker_reach_the_other(
    workers: tuple[WorkerClient, WorkerClient],
) -> None:
    a, b = workers
    # a policy change through A
    status, answer = b.request("POST", "/api/v1/authz/check", ZOE_WRITES)
    assert status == 200 and answer["allowed"] is False
    status, written = a.request(
        "POST", "/api/v1/policies", {"ptype": "g", "rule": ["zoe", "developer"]}, ADMIN
    )
    assert status == 201, written

    def b_allows() -> bool:
        status, answer = b.request("POST", "/api/v1/authz/check", ZOE_WRITES)
        assert status == 200
        return bool(answer["allowed"]) and answer["policy_revision"] == written["policy_revision"]

    wait_until(b_allows, timeout=15)

    # a revocation through A
    status, tokens = b.request(
        "POST", "/api/v1/auth/login", {"username": "root", "password": PASSWORD}
    )
    assert status == 200, tokens
    access = tokens["access_token"]
    status, result = b.request("POST", "/api/v1/tokens/validate", {"token": access})
    assert status == 200 and result["valid"] is True
    status, _ = a.request(
        "POST", "/api/v1/auth/logout", None, {"Authorization": f"Bearer {access}"}
    )
    assert status == 204

    def b_refuses() -> bool:
        status, result = b.request("POST", "/api/v1/tokens/validate", {"token": access})
        assert status == 200
        return result["valid"] is False

    wait_until(b_refuses, timeout=15)


def _revision(srv: Server) -> int:
    import httpx

    value: Any = httpx.get(f"{srv.url}/readyz", timeout=10).json()["checks"]["policy"]["revision"]
    return int(value)


def test_starting_and_restarting_never_bumps_the_revision(
    env: dict[str, str],
    workers: tuple[WorkerClient, WorkerClient],
    tmp_path: Path,
) -> None:
    revisions = set()
    for client in workers:
        status, ready = client.request("GET", "/readyz")
        assert status == 200
        revisions.add(ready["checks"]["policy"]["revision"])
    assert len(revisions) == 1
    revision = revisions.pop()
    one = {**env, "OMS_AUTH_WORKERS": "1"}
    for _ in range(2):  # an instance added, then restarted
        with serve(one, log_dir=tmp_path, migrate=False, timeout=120) as extra:
            assert _revision(extra) == revision
            assert [e["revision"] for e in extra.events("policy.loaded")] == [revision]
    for client in workers:  # nothing reached the running workers either
        status, ready = client.request("GET", "/readyz")
        assert ready["checks"]["policy"]["revision"] == revision


def test_a_killed_worker_is_replaced_and_the_service_keeps_answering(
    server: Server, workers: tuple[WorkerClient, WorkerClient]
) -> None:
    a, b = workers
    victim, survivor = a.pid, b.pid
    os.kill(victim, signal.SIGKILL)
    # the other worker answers meanwhile
    status, answer = b.request("POST", "/api/v1/authz/check", CHECK)
    assert status == 200 and answer["allowed"] is True

    def replaced() -> bool:
        pids = worker_pids(server)
        return len(pids) == 2 and victim not in pids and survivor in pids

    wait_until(replaced, timeout=60)
    wait_until(lambda: bool(server.events("worker.restarted")), timeout=10)
    restarted = server.events("worker.restarted")
    assert [(e["pid"], e["exit_code"]) for e in restarted] == [(victim, -signal.SIGKILL)]
    new_pid = restarted[0]["new_pid"]
    wait_until(  # it accepts connections once its start-up is done
        lambda: any(e.get("pid") == new_pid for e in server.events("service.started")),
        timeout=120,
    )
    newcomer = WorkerClient(server, new_pid)
    try:
        status, answer = newcomer.request("POST", "/api/v1/authz/check", CHECK)
        assert status == 200 and answer["allowed"] is True
        # /metrics: two live workers again, three started, and nothing went backwards
        samples = scrape(newcomer)
        assert samples["oms_auth_workers{}"] == 2
        assert samples["oms_auth_worker_starts_total{}"] == 3
        assert checks_counted(samples) >= 2
    finally:
        newcomer.close()


def test_several_workers_without_redis_refuse_to_start(tmp_path: Path) -> None:
    result = run_cli(
        "serve",
        "--workers",
        "2",
        env={"OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "OMS_AUTH_PORT": "1"},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "OMS_AUTH_WORKERS=2 needs OMS_AUTH_REDIS_URL" in lines[0]


# Last in the file: it fills this address's failed-login window, which would refuse the
# other tests' logins from 127.0.0.1 for the rest of the minute.
def test_login_limit_holds_exactly_across_workers(
    workers: tuple[WorkerClient, WorkerClient],
) -> None:
    a, b = workers
    statuses = []
    for i in range(12):
        client = (a, b)[i % 2]
        status, _ = client.request(
            "POST", "/api/v1/auth/login", {"username": "mallory", "password": f"wrong-{i}-pw"}
        )
        statuses.append(status)
    assert statuses.count(401) == 5 and statuses.count(429) == 7, statuses
    assert statuses[:5] == [401] * 5  # the sixth attempt, on either worker, is refused
