"""The real server process (as `make run` starts it) over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.server import Server, serve

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("e2e")
    env = {"OMS_AUTH_DATABASE_URL": f"sqlite:///{workdir}/oms.db"}
    with serve(env, log_dir=workdir) as srv:
        yield srv


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def test_check_over_http(http: httpx.Client) -> None:
    r = http.post(
        "/api/v1/authz/check",
        json={"subject": "alice", "resource": "api:schemas", "action": "write"},
        headers={"X-Request-ID": "e2e-check-1"},
    )
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "e2e-check-1"
    body = r.json()
    assert body["allowed"] is True and body["cached"] is False
    assert body["decision_id"].startswith("dec_") and body["policy_revision"] >= 1


def test_batch_over_http(http: httpx.Client) -> None:
    checks = [
        {"subject": s, "resource": "api:schemas", "action": "write"}
        for s in ("alice", "bob", "carol", "dave")
    ]
    r = http.post("/api/v1/authz/check/batch", json={"checks": checks})
    assert [x["allowed"] for x in r.json()["results"]] == [True, False, True, False]
    too_many = http.post("/api/v1/authz/check/batch", json={"checks": checks * 251})
    assert too_many.status_code == 413 and too_many.json()["error"]["code"] == "REQ_002"


def test_authzen_over_http(http: httpx.Client) -> None:
    r = http.post(
        "/access/v1/evaluations",
        json={
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "delete"},
            "evaluations": [
                {"resource": {"type": "api", "id": "api:branches:feature"}},
                {"resource": {"type": "api", "id": "api:branches:main"}},
            ],
        },
    )
    assert [e["decision"] for e in r.json()["evaluations"]] == [True, False]
    missing = http.post("/access/v1/evaluation", json={"subject": {"type": "user", "id": "a"}})
    assert missing.status_code == 400
    meta = http.get("/.well-known/authzen-configuration").json()
    assert meta["access_evaluation_endpoint"].endswith("/access/v1/evaluation")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{broken", 422, "REQ_001"),
        (b'{"subject": ["x"], "resource": "y", "action": "z"}', 422, "REQ_001"),
        (
            b'{"subject": "a", "resource": "b", "action": "c"' + b" " * (3 * 1024 * 1024) + b"}",
            413,
            "REQ_003",
        ),
    ],
)
def test_errors_over_http(http: httpx.Client, body: bytes, status: int, code: str) -> None:
    r = http.post("/api/v1/authz/check", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_logs_are_json_with_request_id(http: httpx.Client, server: Server) -> None:
    http.post(
        "/api/v1/authz/check",
        json={"subject": "alice", "resource": "api:schemas", "action": "read"},
        headers={"X-Request-ID": "e2e-log-probe"},
    )
    lines = [orjson.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    assert lines, "the server printed no JSON log lines"
    probe = [entry for entry in lines if entry.get("request_id") == "e2e-log-probe"]
    assert any(entry["event"] == "http.request" and entry["status"] == 200 for entry in probe)
    # uvicorn's own records come through the same JSON sink
    assert any(entry["logger"].startswith("uvicorn") for entry in lines)


def test_docs_are_served(http: httpx.Client) -> None:
    assert http.get("/docs").status_code == 200
    spec = http.get("/openapi.json").json()
    assert spec["info"]["title"] == "oms-auth"


def test_graceful_stop(tmp_path: Path) -> None:
    with serve({"OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/stop.db"}, log_dir=tmp_path) as srv:
        assert srv.process is not None
        srv.process.terminate()
        # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status reports it
        assert srv.process.wait(timeout=15) in (0, -15)
        logs = srv.logs()
        assert '"service.stopping"' in logs and "Traceback" not in logs
