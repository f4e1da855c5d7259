"""The edge over real HTTP: who the client is behind a proxy, which routes need HTTPS, and
the headers on every response."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import services as svc
from tests.support.server import Server, serve

pytestmark = pytest.mark.e2e

FAST_HASH = {
    "OMS_AUTH_ARGON2_TIME_COST": "1",
    "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
    "OMS_AUTH_ARGON2_PARALLELISM": "1",
}


def _env(workdir: Path, service_name: str, **extra: str) -> dict[str, str]:
    return {
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{workdir}/oms.db",
        "OMS_AUTH_REDIS_URL": svc.REDIS_URL,
        "OMS_AUTH_SERVICE_NAME": service_name,
        "OMS_AUTH_RATE_LIMIT_LOGIN_IP": "10/minute",
        "OMS_AUTH_RATE_LIMIT_LOGIN_USER": "1000/minute",
        **FAST_HASH,
        **extra,
    }


@pytest.fixture
def plain(tmp_path: Path, service_name: str) -> Iterator[Server]:
    with serve(_env(tmp_path, service_name, OMS_AUTH_REQUIRE_HTTPS="true"), log_dir=tmp_path) as s:
        yield s


@pytest.fixture
def proxied(tmp_path: Path, service_name: str) -> Iterator[Server]:
    env = _env(
        tmp_path,
        service_name,
        OMS_AUTH_REQUIRE_HTTPS="true",
        OMS_AUTH_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1/32",
    )
    with serve(env, log_dir=tmp_path) as s:
        yield s


def _login(http: httpx.Client, n: int, **headers: str) -> httpx.Response:
    return http.post(
        "/api/v1/auth/login",
        json={"username": f"nobody{n}", "password": "wrong password here"},
        headers=headers,
    )


def test_forwarded_headers_are_ignored_from_an_untrusted_peer(plain: Server) -> None:
    with httpx.Client(base_url=plain.url, timeout=10) as http:
        # a spoofed https scheme does not pass the HTTPS check
        spoofed = _login(http, 0, **{"X-Forwarded-Proto": "https"})
        assert spoofed.status_code == 403, spoofed.text
        assert spoofed.json()["error"]["details"]["reason"] == "https_required"
        # a new X-Forwarded-For per attempt does not escape the per-address limit
        statuses = [
            _login(
                http, i, **{"X-Forwarded-For": f"203.0.113.{i}", "X-Forwarded-Proto": "https"}
            ).status_code
            for i in range(12)
        ]
        assert set(statuses) == {403}  # never read: plain HTTP from an untrusted peer
    assert all(e["client_ip"] == "127.0.0.1" for e in plain.events("http.request"))


def test_trusted_proxy_gives_the_real_client(proxied: Server) -> None:
    with httpx.Client(base_url=proxied.url, timeout=10) as http:
        assert _login(http, 0).status_code == 403  # the proxy itself, over plain HTTP
        fwd = {"X-Forwarded-Proto": "https"}
        # each client has its own bucket: 12 clients, one attempt each, none limited
        for i in range(12):
            r = _login(http, i, **fwd, **{"X-Forwarded-For": f"1.2.3.4, 203.0.113.{i}"})
            assert r.status_code == 401, r.text
        # one client: limited after 10, whatever it writes on the left of the chain
        statuses = [
            _login(http, i, **fwd, **{"X-Forwarded-For": f"9.9.9.{i}, 198.51.100.7"}).status_code
            for i in range(11)
        ]
        assert statuses[:10] == [401] * 10 and statuses[10] == 429
        # a chain through an inner trusted proxy resolves past it
        r = _login(http, 99, **fwd, **{"X-Forwarded-For": "198.51.100.8, 10.1.2.3"})
        assert r.status_code == 401
    ips = {e["client_ip"] for e in proxied.events("http.request")}
    assert {"203.0.113.0", "203.0.113.11", "198.51.100.7", "198.51.100.8"} <= ips
    assert "1.2.3.4" not in ips and "9.9.9.0" not in ips and "10.1.2.3" not in ips
    failures = proxied.events("auth.login.failed")
    assert any(
        "198.51.100.7" in (e.get("ip"), e.get("address"), (e.get("details") or {}).get("address"))
        for e in failures
    )


def test_every_credential_route_refuses_plain_http(plain: Server) -> None:
    guarded = [
        ("POST", "/api/v1/auth/login", {"username": "a", "password": "b"}),
        ("POST", "/api/v2/auth/login", {"username": "a", "password": "b"}),
        ("POST", "/api/v1/auth/refresh", {"refresh_token": "x"}),
        ("POST", "/api/v1/auth/logout", None),
        ("GET", "/api/v1/auth/me", None),
        ("POST", "/api/v1/tokens/validate", {"token": "x"}),
        ("POST", "/api/v1/tokens/validate/batch", {"tokens": ["x"]}),
        ("GET", "/api/v1/policies", None),
        ("POST", "/api/v1/policies/reload", None),
        ("GET", "/api/v1/audit", None),
    ]
    with httpx.Client(base_url=plain.url, timeout=10) as http:
        for method, path, body in guarded:
            r = http.request(method, path, json=body)
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error"]["code"] == "RBAC_002"
            assert r.headers["strict-transport-security"].startswith("max-age=")
        for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
            r = http.post(path, data={"grant_type": "client_credentials"})
            assert r.status_code == 400 and r.json()["error"] == "invalid_request", path
        # a credential on any other route is refused too, rather than sent in clear
        r = http.post(
            "/api/v1/authz/check",
            json={"subject": "alice", "resource": "api:schemas", "action": "read"},
            headers={"Authorization": "Bearer x"},
        )
        assert r.status_code == 403
        # what carries no credential still answers
        assert http.get("/healthz").status_code == 200


def test_security_headers_and_no_host_redirect(plain: Server) -> None:
    with httpx.Client(base_url=plain.url, timeout=10) as http:
        for path in ("/healthz", "/openapi.json", "/nope"):
            r = http.get(path)
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        docs = http.get("/docs")
        assert docs.status_code == 200
        assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
        # claims and tokens are never cached
        answer = http.post("/api/v1/tokens/validate", json={"token": "x"})
        assert answer.headers["cache-control"] == "no-store"
        # no redirect is built from a client-chosen Host
        r = http.get("/api/v1/policies/", headers={"Host": "evil.example"}, follow_redirects=False)
        assert r.status_code != 307 and "evil.example" not in r.headers.get("location", "")


def test_production_implies_https(tmp_path: Path) -> None:
    import secrets

    from app.config import load_settings

    settings = load_settings(
        environment="production",
        issuer="https://auth.example",
        encryption_key=secrets.token_urlsafe(32),
        database_url=f"sqlite:///{tmp_path}/x.db",
    )
    assert settings.https_required
    off = load_settings(environment="test", database_url=f"sqlite:///{tmp_path}/x.db")
    assert not off.https_required
