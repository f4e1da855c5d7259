"""Pools: a busy pool makes a request wait briefly, never fail while its dependency is healthy,
and Redis pool misses do not turn into one database query per request."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis.exceptions
from redis.asyncio import Redis

from app.adapters.redis.client import make_redis
from app.adapters.redis.revocation_cache import RedisRevocationCache
from app.config import Settings
from app.store.database import Database
from app.store.revocations import DatabaseRevocationStore
from app.tokens.models import TokenRef
from app.tokens.revocation import Revocations
from tests.support.tokens import AppFactory, bearer


def _settings(make_settings: Any, **overrides: Any) -> Settings:
    settings: Settings = make_settings(**overrides)
    return settings


async def test_busy_redis_pool_waits_instead_of_failing(make_settings: Any, redis_url: str) -> None:
    settings = _settings(make_settings, redis_url=redis_url, redis_pool_size=1)
    client = make_redis(settings)
    assert isinstance(client, Redis)  # a plain URL: no cluster
    try:
        pool = client.connection_pool
        # (redis-py leaves ConnectionPool.get_connection unannotated)
        held = await pool.get_connection()  # type: ignore[no-untyped-call]

        async def give_back_soon() -> None:
            await asyncio.sleep(0.1)
            await pool.release(held)

        releasing = asyncio.create_task(give_back_soon())
        # every command waits for the one connection, none raises MaxConnectionsError
        results = await asyncio.gather(*(client.ping() for _ in range(20)))
        assert results == [True] * 20
        await releasing
    finally:
        await client.aclose()


async def test_redis_pool_wait_is_bounded(make_settings: Any, redis_url: str) -> None:
    settings = _settings(
        make_settings, redis_url=redis_url, redis_pool_size=1, redis_pool_timeout=0.2
    )
    client = make_redis(settings)
    assert isinstance(client, Redis)  # a plain URL: no cluster
    try:
        # (redis-py leaves ConnectionPool.get_connection unannotated)
        held = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        started = time.monotonic()
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()
        assert time.monotonic() - started < 5
        await client.connection_pool.release(held)
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_revocation_fallbacks_are_coalesced(
    make_settings: Any, pg_url: str, redis_url: str, service_name: str
) -> None:
    settings = _settings(
        make_settings,
        database_url=pg_url,
        redis_url=redis_url,
        redis_pool_size=1,
        redis_pool_timeout=0.05,
    )
    db = Database(pg_url, pool_size=1, max_overflow=0, pool_timeout=2)
    client = make_redis(settings)
    assert isinstance(client, Redis)  # a plain URL: no cluster
    revocations = Revocations(
        DatabaseRevocationStore(db),
        RedisRevocationCache(client, prefix=settings.key_prefix),
        complete_for=60,
    )
    try:
        await revocations.revoke(
            subject="alice", reason="logout", jtis=[("dead-jti", time.time() + 600)]
        )
        await revocations.warm()
        # Redis healthy but its only connection busy: every cache lookup misses the pool
        # (redis-py leaves ConnectionPool.get_connection unannotated)
        held = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        now_ms = int(time.time() * 1000)
        refs = [
            TokenRef(jti=str(uuid.uuid4()), subject=f"user{i}", session=None, issued_ms=now_ms)
            for i in range(200)
        ]
        refs.append(TokenRef(jti="dead-jti", subject="alice", session=None, issued_ms=now_ms))
        states = await asyncio.gather(*(revocations.check([ref]) for ref in refs))
        reasons = [Revocations.reason(ref, state) for ref, state in zip(refs, states, strict=True)]
        assert reasons[-1] == "revoked" and reasons[:-1] == [None] * 200
        # 201 fallbacks on a one-connection database pool, answered by a handful of queries
        assert 1 <= revocations.fallback.queries <= 10, revocations.fallback.queries
        await client.connection_pool.release(held)
    finally:
        await revocations.close()
        await client.aclose()
        await db.close()


async def test_decisions_survive_small_pools_under_a_burst(
    token_app_factory: AppFactory, pg_url: str, redis_url: str
) -> None:
    async with token_app_factory(
        database_url=pg_url,
        redis_url=redis_url,
        redis_pool_size=2,
        db_pool_size=1,
        db_max_overflow=0,
        decision_auth="token",
        rate_limit_check="100000/minute",
    ) as env:
        token = (await env.login("alice"))["access_token"]
        check = {"subject": "alice", "resource": "api:schemas", "action": "write"}
        answers = await asyncio.gather(
            *(
                env.http.post("/api/v1/authz/check", json=check, headers=bearer(token))
                for _ in range(150)
            )
        )
        statuses = [r.status_code for r in answers]
        assert statuses == [200] * 150, sorted(set(statuses))
        assert all(r.json()["allowed"] is True for r in answers)
