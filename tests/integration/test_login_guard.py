"""Brute force without a lock-out weapon (app.security.login_guard), on PostgreSQL + Redis:
only failures count, the account backs off, the real user at a known address or device is
not slowed down, bursts raise an audited alert, `oms-auth users unlock` ends the back-off."""

from __future__ import annotations

import asyncio

import httpx

from tests.support.redis_server import RedisServer
from tests.support.server import run_cli
from tests.support.tokens import PASSWORD, AppFactory, TokenApp

KEY = "k" * 32
VICTIM_IP, ATTACKER_IP = "198.51.100.1", "203.0.113.9"


async def _login(
    env: TokenApp, user: str, password: str, ip: str, fingerprint: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": ip}
    if fingerprint:
        headers["X-Device-Fingerprint"] = fingerprint
    return await env.http.post(
        "/api/v1/auth/login", json={"username": user, "password": password}, headers=headers
    )


def _settings(pg_url: str, redis_url: str, **extra: object) -> dict[str, object]:
    return {
        "database_url": pg_url,
        "redis_url": redis_url,
        "trusted_proxies": "127.0.0.1/32",
        "login_free_failures": 3,
        "login_backoff_base": 60,  # the first wait outlasts a slow machine's next request
        "login_backoff_max": 600,
        "login_alert_every": 3,
        "admin_api_key": KEY,
        **extra,
    }


async def test_successes_never_count(
    token_app_factory: AppFactory, pg_url: str, redis_url: str
) -> None:
    async with token_app_factory(
        **_settings(pg_url, redis_url, rate_limit_login_ip="3/minute")
    ) as env:
        for _ in range(8):
            assert (await _login(env, "bob", PASSWORD, VICTIM_IP)).status_code == 200
        # failures from one address do hit its limit
        for _ in range(3):
            assert (await _login(env, "nobody", "wrong pw", ATTACKER_IP)).status_code == 401
        assert (await _login(env, "alice", PASSWORD, ATTACKER_IP)).status_code == 429


async def test_a_sprayer_cannot_lock_the_victim_out(
    token_app_factory: AppFactory, pg_url: str, redis_url: str
) -> None:
    async with token_app_factory(**_settings(pg_url, redis_url)) as env:
        # the victim has logged in before from home, and from a laptop elsewhere
        assert (await _login(env, "bob", PASSWORD, VICTIM_IP)).status_code == 200
        laptop = await _login(env, "bob", PASSWORD, "192.0.2.50", fingerprint="laptop-1")
        assert laptop.status_code == 200
        # the attacker: three failures (case does not open a new bucket), then back-off
        for name in ("bob", "BOB", "Bob"):
            assert (await _login(env, name, "wrong pw", ATTACKER_IP)).status_code == 401
        for password in ("wrong again", PASSWORD):  # not even checked while backing off
            r = await _login(env, "bob", password, ATTACKER_IP)
            assert r.status_code == 429, r.text
            assert r.json()["error"]["details"]["reason"] == "account_backoff"
            assert int(r.headers["retry-after"]) >= 1
        # ...from another unknown address too: the account backs off, not the address
        assert (await _login(env, "bob", PASSWORD, "203.0.113.77")).status_code == 429
        # the victim at home, and on the laptop from a new address, walks in
        assert (await _login(env, "bob", PASSWORD, VICTIM_IP)).status_code == 200
        r = await _login(env, "bob", PASSWORD, "192.0.2.99", fingerprint="laptop-1")
        assert r.status_code == 200
        # other accounts are untouched
        assert (await _login(env, "alice", PASSWORD, ATTACKER_IP)).status_code == 200
        # the OAuth password grant shares the back-off
        oauth = await env.http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "bob", "password": PASSWORD},
            auth=("web", env.secrets["web"]),
            headers={"X-Forwarded-For": ATTACKER_IP},
        )
        assert oauth.status_code == 429
        # the burst was audited and counted
        audit = await env.http.get(
            "/api/v1/audit?action=alert.login_burst", headers={"X-API-Key": KEY}
        )
        assert audit.status_code == 200, audit.text
        events = audit.json()["items"]
        assert events and events[0]["target"] == "user:bob"
        assert events[0]["details"]["failures"] == 3
        metrics = (await env.http.get("/metrics")).text
        assert 'oms_auth_security_alerts_total{kind="login_burst"} 1.0' in metrics
        # an operator unlocks the account: the back-off ends at once, and is audited
        cli_env = {
            "OMS_AUTH_DATABASE_URL": pg_url,
            "OMS_AUTH_REDIS_URL": redis_url,
            "OMS_AUTH_SERVICE_NAME": env.settings.service_name,
        }
        done = await asyncio.to_thread(run_cli, "users", "unlock", "Bob", env=cli_env)
        assert done.returncode == 0, done.stderr
        assert (await _login(env, "bob", PASSWORD, ATTACKER_IP)).status_code == 200
        audit = await env.http.get("/api/v1/audit?action=user.unlocked", headers={"X-API-Key": KEY})
        assert audit.json()["items"][0]["target"] == "user:bob"


async def test_the_back_off_outlives_a_redis_outage(
    token_app_factory: AppFactory, pg_url: str, private_redis: RedisServer
) -> None:
    """Failures counted in Redis are also kept by the instance that saw them: when Redis
    fails (or is made slow), the account still backs off instead of starting afresh."""
    async with token_app_factory(**_settings(pg_url, private_redis.url)) as env:
        for _ in range(3):
            assert (await _login(env, "bob", "wrong pw", ATTACKER_IP)).status_code == 401
        assert (await _login(env, "bob", PASSWORD, ATTACKER_IP)).status_code == 429
        private_redis.stop()
        r = await _login(env, "bob", PASSWORD, ATTACKER_IP)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["details"]["reason"] == "account_backoff"
        # other accounts still log in (revocations fall back to the database)
        assert (await _login(env, "alice", PASSWORD, VICTIM_IP)).status_code == 200
