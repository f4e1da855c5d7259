"""Revocation never loses a revoked token: Redis flushed, Redis down, Redis restarted empty,
several instances, and no Redis at all. Runs on both database backends."""

from __future__ import annotations

from datetime import UTC, datetime

from app.store.database import Database
from app.store.revocations import DatabaseRevocationStore
from tests.support.apps import serve
from tests.support.redis_server import RedisServer
from tests.support.tokens import AppFactory, TokenApp, bearer, claims_of
from tests.support.waiting import wait_for


def _lookups(env: TokenApp, path: str) -> float:
    value: float = env.tokens.metrics.revocation_lookups.labels(path=path)._value.get()
    return value


async def _code(env: TokenApp, token: str) -> str | None:
    result = await env.validate(token)
    return None if result["valid"] else str(result["error"]["code"])


async def test_revocation_survives_redis_flushdb(
    token_app_factory: AppFactory, database_url: str, private_redis: RedisServer
) -> None:
    # a private Redis: the flush must not touch what other test runs keep in the shared one;
    # which tier answers is the point here: no in-process window of recent lookups
    async with token_app_factory(
        database_url=database_url, redis_url=private_redis.url, caller_cache_seconds=0
    ) as env:
        revoked = await env.login("alice")
        stale = await env.login("bob")
        live = await env.login("carol")
        assert (
            await env.http.post("/api/v1/auth/logout", headers=bearer(revoked["access_token"]))
        ).status_code == 204
        await env.tokens.service.disable_user("bob")
        cache_before = _lookups(env, "cache")
        assert await _code(env, revoked["access_token"]) == "AUTH_005"
        assert _lookups(env, "cache") == cache_before + 1  # answered by Redis

        sync = private_redis.client()
        try:
            sync.flushdb()
        finally:
            sync.close()

        db_before = _lookups(env, "db")
        assert await _code(env, revoked["access_token"]) == "AUTH_005"
        assert await _code(env, stale["access_token"]) == "AUTH_005"
        assert await _code(env, live["access_token"]) is None
        assert _lookups(env, "db") >= db_before + 1  # Redis lost its copy: the DB answered

        cache = env.tokens.service.revocations.cache
        marker = cache.complete_key  # type: ignore[attr-defined]

        async def refilled() -> bool:
            return bool(await env.services.redis.exists(marker))  # type: ignore[union-attr]

        await wait_for(refilled, timeout=10, interval=0.05, message="Redis was never refilled")
        cache_before = _lookups(env, "cache")
        assert await _code(env, revoked["access_token"]) == "AUTH_005"
        assert await _code(env, stale["access_token"]) == "AUTH_005"
        assert _lookups(env, "cache") == cache_before + 2  # Redis is complete again
        jti = claims_of(revoked["access_token"])["jti"]
        keys = [k.decode() async for k in env.services.redis.scan_iter(match=f"*{jti}")]  # type: ignore[union-attr]
        assert keys == [f"{env.settings.key_prefix}:auth:revoked:jti:{jti}"]
        ttl = await env.services.redis.ttl(keys[0])  # type: ignore[union-attr]
        assert 0 < ttl <= 900  # the token's remaining lifetime


async def test_redis_down_and_restarted_empty(
    token_app_factory: AppFactory, database_url: str, private_redis: RedisServer
) -> None:
    server = private_redis
    async with token_app_factory(database_url=database_url, redis_url=server.url) as env:
        before = await env.login("alice")
        during = await env.login("bob")
        server.stop()
        # Redis is down: revocation still records durably, validation asks the DB
        r = await env.http.post("/api/v1/auth/logout", headers=bearer(during["access_token"]))
        assert r.status_code == 204
        assert await _code(env, during["access_token"]) == "AUTH_005"
        assert await _code(env, before["access_token"]) is None
        login = await env.http.post(
            "/api/v2/auth/login",
            json={"username": "carol", "password": "correct horse battery"},
        )
        assert login.status_code == 200  # rate limits fall back to this process
        assert env.tokens.service.revocations.has_pending

        server.start()  # back, and empty
        assert await _code(env, during["access_token"]) == "AUTH_005"

        async def caught_up() -> bool:
            return not env.tokens.service.revocations.has_pending

        await wait_for(
            caught_up, timeout=10, interval=0.05, message="pending revocations never reached Redis"
        )
        assert await _code(env, during["access_token"]) == "AUTH_005"
        assert await _code(env, before["access_token"]) is None


async def test_other_instances_see_revocations(
    token_app_factory: AppFactory, pg_url: str, redis_url: str
) -> None:
    async with token_app_factory(database_url=pg_url, redis_url=redis_url) as first:
        tokens = await first.login("alice")
        # a second instance: same database and Redis, its own process state
        async with serve(first.settings) as (_, second):
            r = await first.http.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
            assert r.status_code == 204
            v = await second.post("/api/v1/tokens/validate", json={"token": tokens["access_token"]})
            assert v.json()["error"]["code"] == "AUTH_005"


async def test_without_redis_writes_elsewhere_arrive_by_polling(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, policy_poll_interval=0.1) as env:
        assert env.services.redis is None
        tokens = await env.login("alice")
        claims = claims_of(tokens["access_token"])
        # another instance (or the CLI) records a revocation in the shared database
        db = Database(database_url)
        try:
            await DatabaseRevocationStore(db).revoke(
                ids=[(claims["jti"], float(claims["exp"]))],
                subject="alice",
                reason="elsewhere",
                at=datetime.now(UTC),
            )
        finally:
            await db.close()

        async def seen() -> bool:
            return await _code(env, tokens["access_token"]) == "AUTH_005"

        await wait_for(
            seen, timeout=10, interval=0.05, message="the revocation never arrived by polling"
        )
        assert _lookups(env, "db") == 0  # the in-process store answered every time
