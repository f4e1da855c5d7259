"""Hot reload in a running server: a real `oms-auth serve` process watching a temp policy dir.

A valid edit flips a decision; an invalid edit is rejected with a log event naming the file
and line, and the previous policy keeps answering.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import Server, serve
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

CHECK = {"subject": "bob", "resource": "api:schemas", "action": "write"}


@pytest.fixture
def server(
    sqlite_url: str, policy_dir: Path, tmp_path: Path, service_name: str
) -> Iterator[Server]:
    env = {
        "OMS_AUTH_DATABASE_URL": sqlite_url,
        "OMS_AUTH_POLICY_DIR": str(policy_dir),
        "OMS_AUTH_POLICY_WATCH": "true",
        "OMS_AUTH_SERVICE_NAME": service_name,
        "OMS_AUTH_LOG_JSON": "true",
    }
    with serve(env, log_dir=tmp_path, migrate=False) as srv:
        wait_until(
            lambda: bool(srv.events("policy.watch.started")),
            timeout=10,
            message=lambda: "the policy watcher never started:\n" + srv.logs()[-3000:],
        )
        yield srv


def decide(server: Server) -> tuple[bool, int]:
    r = httpx.post(f"{server.url}/api/v1/authz/check", json=CHECK, timeout=5)
    assert r.status_code == 200, r.text
    return bool(r.json()["allowed"]), int(r.json()["policy_revision"])


def test_valid_edit_goes_live_and_invalid_edit_is_rejected(
    server: Server, policy_dir: Path
) -> None:
    csv = policy_dir / "policy.csv"
    original = csv.read_text()
    allowed, revision = decide(server)
    assert not allowed

    csv.write_text(original + "g, bob, developer\n")
    new_revision = revision

    def live() -> bool:
        nonlocal new_revision
        allowed, new_revision = decide(server)
        return allowed

    wait_until(
        live,
        timeout=20,
        interval=0.02,
        message=lambda: "a valid edit was not live within 20 s:\n" + server.logs()[-3000:],
    )
    assert new_revision > revision

    good = csv.read_text()
    csv.write_text(good + "p, bob, api:schemas, write\n")  # one value short
    bad_line = len(good.splitlines()) + 1
    wait_until(
        lambda: bool(server.events("policy.reload.rejected")),
        timeout=10,
        message=lambda: "the invalid edit was never rejected:\n" + server.logs()[-3000:],
    )
    rejected = server.events("policy.reload.rejected")
    assert (rejected[0]["file"], rejected[0]["line"], rejected[0]["code"]) == (
        "policy.csv",
        bad_line,
        "PL003",
    )
    assert decide(server) == (True, new_revision)  # the previous policy keeps serving
    assert server.process is not None and server.process.poll() is None
