"""Rate limits on credential use: failed logins per IP, per-account back-off, refresh per
user (RATE_001)."""

from __future__ import annotations

import httpx
import pytest

from app.main import create_app
from tests.support.tokens import PASSWORD, AppFactory


@pytest.mark.parametrize("storage", ["memory", "redis"])
async def test_login_limit_per_user(
    token_app_factory: AppFactory, redis_url: str, storage: str
) -> None:
    redis = {"redis_url": redis_url} if storage == "redis" else {}
    # the first wait (60 s) outlasts a slow machine's next request
    async with token_app_factory(login_free_failures=3, login_backoff_base=60, **redis) as env:
        for _ in range(3):
            await env.login("bob", "wrong-password", expect=401)
        # backing off: even the right password is refused, with how long to wait
        r = await env.http.post(
            "/api/v1/auth/login", json={"username": "bob", "password": PASSWORD}
        )
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["code"] == "RATE_001"
        assert error["details"]["reason"] == "account_backoff"
        assert 1 <= int(r.headers["retry-after"]) <= 900
        await env.login("alice")  # other users are not affected
        # the OAuth password grant shares the same limit
        oauth = await env.oauth(
            "token", "web", {"grant_type": "password", "username": "bob", "password": PASSWORD}
        )
        assert oauth.status_code == 429 and oauth.json()["error"] == "temporarily_unavailable"
        assert "retry-after" in oauth.headers


async def test_login_limit_per_ip_counts_unknown_users(token_app_factory: AppFactory) -> None:
    async with token_app_factory(rate_limit_login_ip="4/minute") as env:
        for i in range(4):
            await env.login(f"nobody{i}", "whatever-pw", expect=401)
        r = await env.http.post(
            "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
        )
        assert r.status_code == 429 and r.json()["error"]["details"]["limit"] == "4/minute"


async def test_refresh_limit_per_user(token_app_factory: AppFactory) -> None:
    async with token_app_factory(rate_limit_refresh="2/hour") as env:
        token = (await env.login("alice"))["refresh_token"]
        for _ in range(2):
            r = await env.http.post("/api/v1/auth/refresh", json={"refresh_token": token})
            assert r.status_code == 200
            token = r.json()["refresh_token"]
        r = await env.http.post("/api/v1/auth/refresh", json={"refresh_token": token})
        assert r.status_code == 429
        assert r.json()["error"]["details"] == {
            "limit": "2/hour",
            "window": 3600,
            "name": "refresh_user",
        }
        # a refused refresh does not consume the token: it works once the window allows
        await env.tokens.rate_limits._memory.storage.reset()
        r = await env.http.post("/api/v1/auth/refresh", json={"refresh_token": token})
        assert r.status_code == 200


async def test_limits_are_shared_through_redis(
    token_app_factory: AppFactory, redis_url: str
) -> None:
    async with token_app_factory(login_free_failures=2, redis_url=redis_url) as env:
        await env.login("bob", "wrong-password", expect=401)
        other = create_app(env.settings)  # a second instance, same Redis
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as b:
                r = await b.post("/api/v1/auth/login", json={"username": "bob", "password": "x1"})
                assert r.status_code == 401
                r = await b.post("/api/v1/auth/login", json={"username": "bob", "password": "x2"})
                assert r.status_code == 429
        assert env.services.redis is not None
        keys = [
            k async for k in env.services.redis.scan_iter(match=f"{env.settings.key_prefix}:rate*")
        ]
        assert keys, "the limiter's windows live in Redis under the service prefix"
