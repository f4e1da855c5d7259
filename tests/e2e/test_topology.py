"""The production shape on this machine: nginx (from the distribution) terminating TLS with a
test CA, in front of two `oms-auth serve` processes on PostgreSQL + Redis.

Checks: plain HTTP is redirected and credential endpoints refuse it; the client's real address
(not the proxy's) reaches rate limits and the audit trail; X-Forwarded-For from anyone but the
proxy is ignored; load is spread over both instances; a rolling restart (take an instance out
of the proxy, restart it, put it back; then the other) fails no request.
"""

from __future__ import annotations

import ssl
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import POLICY_DIR
from tests.support.nginx import Nginx
from tests.support.server import Server, instances
from tests.support.tls import make_pki
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(540)]

KEY = "topology-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
CHECK = {"subject": "alice", "resource": "api:schemas", "action": "write"}


def _checks_served(server: Server) -> float:
    text = httpx.get(server.url + "/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("oms_auth_http_requests_total{")
            and 'route="/api/v1/authz/check"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _client(base: str, ca: Path, source: str | None = None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(ca))
    transport = httpx.HTTPTransport(verify=context, local_address=source) if source else None
    kwargs: dict[str, Any] = {"base_url": base, "timeout": 10, "verify": context}
    if transport is not None:
        kwargs["transport"] = transport
    return httpx.Client(**kwargs)


def _audit(server: Server, **params: str) -> list[dict[str, Any]]:
    # Straight to the instance from the proxy's address: it vouches for HTTPS as nginx does.
    headers = {**ADMIN, "X-Forwarded-Proto": "https"}
    r = httpx.get(server.url + "/api/v1/audit", params=params, headers=headers, timeout=5)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _served_any(server: Server) -> bool:
    return _checks_served(server) > 0


def _drained(server: Server) -> bool:
    """No new check reached `server` for a while (the proxy stopped sending it any)."""
    before = _checks_served(server)
    time.sleep(0.5)
    return _checks_served(server) == before


def test_tls_proxy_in_front_of_two_instances(
    pg_url: str, redis_url: str, service_name: str, tmp_path: Path
) -> None:
    env = {
        "OMS_AUTH_DATABASE_URL": pg_url,
        "OMS_AUTH_REDIS_URL": redis_url,
        "OMS_AUTH_SERVICE_NAME": service_name,
        "OMS_AUTH_POLICY_DIR": str(POLICY_DIR),
        "OMS_AUTH_POLICY_WATCH": "false",
        "OMS_AUTH_REQUIRE_HTTPS": "true",
        "OMS_AUTH_WORKERS": "2",  # the production shape: two instances of two workers
        "OMS_AUTH_TRUSTED_PROXIES": "127.0.0.1/32",  # nginx; nobody else's X-Forwarded-*
        "OMS_AUTH_ADMIN_API_KEY": KEY,
        "OMS_AUTH_RATE_LIMIT_LOGIN_IP": "3/minute",
        "OMS_AUTH_RATE_LIMIT_LOGIN_USER": "100/minute",
        "OMS_AUTH_LOG_LEVEL": "INFO",
        "OMS_AUTH_ARGON2_TIME_COST": "1",
        "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
        "OMS_AUTH_ARGON2_PARALLELISM": "1",
    }
    pki = make_pki(tmp_path / "pki")
    with instances(env, tmp_path, count=2, timeout=120) as servers:
        proxy = Nginx(tmp_path / "nginx", pki, [s.port for s in servers])
        try:
            proxy.start()
            _run_checks(proxy, servers, pki.ca_cert)
        finally:
            proxy.stop()


def _run_checks(proxy: Nginx, servers: list[Server], ca: Path) -> None:
    a, b = servers
    # HTTPS: plain HTTP is redirected; the certificate verifies against the test CA.
    plain = httpx.get(proxy.http_url + "/readyz", timeout=5)
    assert plain.status_code == 308
    assert plain.headers["location"] == f"https://127.0.0.1:{proxy.https_port}/readyz"
    with _client(proxy.url, ca) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.headers["strict-transport-security"].startswith("max-age=")
        # Credential endpoints refuse plain HTTP (reached directly) but not the proxy's HTTPS.
        direct = httpx.post(a.url + "/oauth/token", data={"grant_type": "client_credentials"})
        assert direct.status_code == 400 and "HTTPS" in direct.json()["error_description"]
        proxied = client.post("/oauth/token", data={"grant_type": "client_credentials"})
        assert proxied.status_code == 401 and proxied.json()["error"] == "invalid_client"

        # Load spread over both instances.
        before = [_checks_served(s) for s in servers]
        for _ in range(40):
            assert client.post("/api/v1/authz/check", json=CHECK).json()["allowed"] is True
        after = [_checks_served(s) for s in servers]
        assert all(x - y >= 5 for x, y in zip(after, before, strict=True)), (before, after)

    # The real client address reaches the rate limits and the audit trail.
    login = {"username": "nobody-here", "password": "wrong-password-123"}
    with _client(proxy.url, ca, source="127.0.0.2") as first:
        codes = [first.post("/api/v1/auth/login", json=login).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    with _client(proxy.url, ca, source="127.0.0.3") as second:
        assert second.post("/api/v1/auth/login", json=login).status_code == 401

    def addresses() -> set[str]:
        events = _audit(a, action="auth.login.failed", limit="50")
        return {e["details"]["address"] for e in events}

    wait_until(
        lambda: {"127.0.0.2", "127.0.0.3"} <= addresses(),
        timeout=30,
        interval=0.1,
        message="the clients' addresses never reached the audit trail",
    )
    assert "127.0.0.1" not in addresses()  # never the proxy's own address

    # X-Forwarded-For from a client that is not the proxy is ignored.
    spoof = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.4"), timeout=10)
    with spoof:
        r = spoof.post(
            b.url + "/api/v1/auth/login",
            json=login,
            headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        )
    # its X-Forwarded-Proto is not believed either: plain HTTP, refused before it is read
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "https_required"
    assert "203.0.113.9" not in addresses()

    _rolling_restart(proxy, servers, ca)


def _rolling_restart(proxy: Nginx, servers: list[Server], ca: Path) -> None:
    failures: list[str] = []
    done = threading.Event()
    sent = [0]

    def traffic() -> None:
        # One connection per request: a proxy reload closes idle keep-alive connections, and
        # a request racing that close is the client's to retry (RFC 9112 9.3.1); what is under
        # test is that no request the proxy accepted fails while instances restart.
        context = ssl.create_default_context(cafile=str(ca))
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=proxy.url, verify=context, limits=limits, timeout=10) as client:
            while not done.is_set():
                try:
                    r = client.post("/api/v1/authz/check", json=CHECK)
                    if r.status_code != 200 or r.json().get("allowed") is not True:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                sent[0] += 1
                done.wait(0.02)  # a steady trickle (~50/s) is proof enough, and leaves the CPU

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        for server in servers:
            others = [s.port for s in servers if s is not server]
            proxy.set_upstreams(others)  # out of rotation
            wait_until(
                partial(_drained, server),
                timeout=30,
                interval=0.1,
                message=f"the proxy kept sending checks to port {server.port}",
            )
            server.stop()
            server.start()
            server.wait_ready(60)
            proxy.set_upstreams([s.port for s in servers])  # back in
            wait_until(
                partial(_served_any, server),
                timeout=30,
                interval=0.1,
                message=f"the restarted instance on port {server.port} got no checks",
            )
    finally:
        done.set()
        worker.join(timeout=30)
    assert sent[0] >= 20, sent
    assert not failures, failures[:5]
