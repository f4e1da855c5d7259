"""The OpenAPI contract, checked by schemathesis against live servers (open and token mode).

A bounded run: every operation, a fixed seed, about a thousand generated cases per mode;
checks `not_a_server_error`, `status_code_conformance`, `response_schema_conformance` and
`content_type_conformance`. Its report is attached to the failure.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Server, serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(480)]

CHECKS = (
    "not_a_server_error,status_code_conformance,response_schema_conformance,"
    "content_type_conformance"
)
MAX_EXAMPLES = 6
FAST = {
    "OMS_AUTH_ARGON2_TIME_COST": "1",
    "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
    "OMS_AUTH_ARGON2_PARALLELISM": "1",
    "OMS_AUTH_POLICY_WATCH": "false",
    "OMS_AUTH_LOG_LEVEL": "WARNING",
    # GET /api/v1/decisions answers 503 while the decision log is off: run it for real.
    "OMS_AUTH_DECISION_LOG_ENABLED": "true",
}


@pytest.fixture(params=["open", "token"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    key = secrets.token_urlsafe(32)
    env = {
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/oms.db",
        "OMS_AUTH_DECISION_AUTH": request.param,
        "OMS_AUTH_ADMIN_API_KEY": key,
        "OMS_AUTH_RATE_LIMIT_CHECK": "1000000/minute",
        "OMS_AUTH_RATE_LIMIT_LOGIN_IP": "1000000/minute",
        **FAST,
    }
    with serve(env, log_dir=tmp_path, timeout=60) as server:
        yield server, key


def test_the_live_api_keeps_its_contract(live: tuple[Server, str]) -> None:
    server, key = live
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "20261130",
            "--request-timeout",
            "30",
            "--no-color",
            "-H",
            f"X-API-Key: {key}",
        ],
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    report = done.stdout[-8000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert "generated" in done.stdout, report
    assert "Traceback" not in server.logs()
