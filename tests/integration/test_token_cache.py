"""The token-validation cache API (for the token endpoints): hashed keys, batching, forgetting."""

from __future__ import annotations

import hashlib
from contextlib import AsyncExitStack

import pytest
import redis

from app.cache.layer import CacheLayer
from tests.conftest import SettingsFactory
from tests.support.apps import serve, services_of
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

TOKEN = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
RESULT = {"valid": True, "claims": {"sub": "alice", "scope": "api:schemas:read"}}


async def test_results_are_shared_under_hashed_keys_and_forgotten_everywhere(
    make_settings: SettingsFactory, redis_url: str, service_name: str
) -> None:
    settings = make_settings(redis_url=redis_url)
    shared = redis.Redis.from_url(redis_url)
    async with AsyncExitStack() as stack:
        app_a, _ = await stack.enter_async_context(serve(settings))
        app_b, _ = await stack.enter_async_context(serve(settings))
        a, b = (services_of(x).cache for x in (app_a, app_b))
        assert isinstance(a, CacheLayer) and isinstance(b, CacheLayer)
        sync_b = b.sync

        async def b_listens() -> bool:
            return sync_b.subscribed

        await wait_for(b_listens, timeout=2.0)
        assert await a.tokens.get(TOKEN) is None
        await a.tokens.put(TOKEN, RESULT, ttl=60)
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        keys = [k.decode() for k in shared.scan_iter(f"{service_name}:v1:auth:token:*")]
        assert keys == [f"{service_name}:v1:auth:token:{digest}"]
        assert TOKEN.encode() not in (shared.get(keys[0]) or b"")
        assert 0 < shared.ttl(keys[0]) <= 60
        # instance B: one MGET for the batch, then from its own L1
        assert await b.tokens.get_many([TOKEN, "other-token"]) == [RESULT, None]
        shared.delete(keys[0])
        assert await b.tokens.get(TOKEN) == RESULT  # L1
        # revocation on A drops B's L1 copy through the eviction channel
        await b.tokens.put(TOKEN, RESULT, ttl=60)
        await a.tokens.forget(TOKEN)
        assert shared.exists(keys[0]) == 0

        async def gone_on_b() -> bool:
            return await b.tokens.get(TOKEN) is None

        await wait_for(gone_on_b, timeout=1.0)
    shared.close()
