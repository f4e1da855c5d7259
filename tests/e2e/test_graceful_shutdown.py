"""Stopping a busy server: it exits within its shutdown timeout, requests cut short get a
clean answer (or a closed connection), and no traceback is logged for them."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import serve

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough password"
SHUTDOWN_TIMEOUT = 2


def test_busy_server_stops_within_its_timeout_without_tracebacks(tmp_path: Path) -> None:
    env = {
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/oms.db",
        "OMS_AUTH_BOOTSTRAP_ADMIN": f"root:{PASSWORD}",
        "OMS_AUTH_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        # one slow hashing thread and a long queue: logins stay in flight for seconds
        "OMS_AUTH_ARGON2_TIME_COST": "6",
        "OMS_AUTH_HASH_WORKERS": "1",
        "OMS_AUTH_HASH_QUEUE": "100",
        "OMS_AUTH_HASH_QUEUE_TIMEOUT": "60",
        "OMS_AUTH_RATE_LIMIT_LOGIN_IP": "10000/minute",
        "OMS_AUTH_RATE_LIMIT_LOGIN_USER": "10000/minute",
        "OMS_AUTH_POLICY_WATCH": "false",
    }
    with serve(env, log_dir=tmp_path, timeout=120) as server:
        out = server.cli("clients", "create", "web", "--scope", "*", "--grant", "password")
        secret = re.search(r"client_secret: (\S+)", out)
        assert secret is not None
        answers: list[int | str] = []
        done = threading.Event()

        def login(i: int) -> None:
            try:
                with httpx.Client(base_url=server.url, timeout=60) as http:
                    if i % 2:
                        r = http.post(
                            "/oauth/token",
                            data={
                                "grant_type": "password",
                                "username": "root",
                                "password": PASSWORD,
                            },
                            auth=("web", secret.group(1)),
                        )
                    else:
                        r = http.post(
                            "/api/v1/auth/login", json={"username": "root", "password": PASSWORD}
                        )
                answers.append(r.status_code)
            except httpx.HTTPError as exc:
                answers.append(type(exc).__name__)
            finally:
                done.set()

        threads = [threading.Thread(target=login, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        assert done.wait(60), "no login finished"  # the rest are queued or hashing now
        assert server.process is not None
        started = time.monotonic()
        server.process.terminate()
        server.process.wait(timeout=60)
        took = time.monotonic() - started
        for t in threads:
            t.join(60)
        logs = server.logs()
        assert took < SHUTDOWN_TIMEOUT + 8, (took, logs[-3000:])
        assert "Traceback" not in logs, logs[-3000:]
        assert "Exception in ASGI application" not in logs
        assert server.events("http.request_cancelled"), "no request was cut short"
        assert len(answers) == 16
        # every login got an answer or a closed connection: never a 500
        assert all(a in (200, 503) or isinstance(a, str) for a in answers), answers
