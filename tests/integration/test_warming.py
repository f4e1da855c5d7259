"""Cache warming: the most active subjects' permission sets are ready after start and changes."""

from __future__ import annotations

import httpx
import pytest
import redis

from app.adapters.redis.layer import CacheLayer
from tests.conftest import SettingsFactory
from tests.support.apps import serve, services_of

pytestmark = pytest.mark.integration


async def busy(client: httpx.AsyncClient, subject: str, times: int) -> None:
    for _ in range(times):
        body = {"subject": subject, "resource": "api:schemas", "action": "read"}
        assert (await client.post("/api/v1/authz/check", json=body)).status_code == 200


async def cached(client: httpx.AsyncClient, user: str) -> bool:
    value: bool = (await client.get(f"/api/v1/users/{user}/permissions")).json()["cached"]
    return value


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "local"])
async def test_active_subjects_are_warmed_after_a_policy_change(
    make_settings: SettingsFactory, redis_url: str, with_redis: bool
) -> None:
    settings = make_settings(redis_url=redis_url if with_redis else None, cache_warm_subjects=2)
    async with serve(settings) as (app, client):
        layer = services_of(app).cache
        assert isinstance(layer, CacheLayer)
        await busy(client, "alice", 5)
        await busy(client, "bob", 3)
        await busy(client, "dave", 1)
        await layer.activity.flush()
        assert await layer.activity.top(2) == [("alice", None), ("bob", None)]
        await services_of(app).engine.load(trigger="reload")
        await layer.warmer.wait()
        revision = services_of(app).engine.revision
        assert layer.warmer.last_warmed == (revision, 2)
        assert await cached(client, "alice") and await cached(client, "bob")
        assert not await cached(client, "dave")  # not among the top 2
        metrics = (await client.get("/metrics")).text
        assert "oms_auth_cache_warmed_subjects 2.0" in metrics


async def test_a_new_instance_warms_what_the_fleet_uses(
    make_settings: SettingsFactory, redis_url: str, service_name: str
) -> None:
    settings = make_settings(redis_url=redis_url, cache_warm_subjects=5)
    async with serve(settings) as (app, client):
        await busy(client, "carol", 4)
        await services_of(app).cache.activity.flush()
    shared = redis.Redis.from_url(redis_url)
    try:
        assert shared.zscore(f"{service_name}:v1:stats:active_subjects", "carol") == 4.0
    finally:
        shared.close()
    async with serve(settings) as (app, client):
        await services_of(app).cache.warmer.wait()
        assert await cached(client, "carol")


async def test_activity_flush_adds_halves_and_trims_in_redis(
    redis_url: str, service_name: str
) -> None:
    """Counts add up across flushes, every `decay_every` flushes they are halved, and only
    the `max_tracked` most active subjects stay, over more subjects than one script call."""
    from redis.asyncio import Redis

    from app.adapters.redis.warming import _FLUSH_CHUNK, ActivityTracker
    from app.cache.keys import CacheKeys

    keys = CacheKeys(f"{service_name}:v1")
    client = Redis.from_url(redis_url)
    tracker = ActivityTracker(keys=keys, redis=client, max_tracked=3, decay_every=2)
    try:
        for n, subject in enumerate(["a", "b", "c", "d"], start=1):
            for _ in range(n):
                tracker.record(subject)
        await tracker.flush()
        scores = await client.zrange(keys.active_subjects, 0, -1, withscores=True)
        assert scores == [(b"b", 2.0), (b"c", 3.0), (b"d", 4.0)]  # "a" trimmed
        for _ in range(5):
            tracker.record("d", "tenant")
        await tracker.flush()  # the second flush decays: (old + new) / 2, then trims "b"
        scores = await client.zrange(keys.active_subjects, 0, -1, withscores=True)
        assert scores == [(b"c", 1.5), (b"d", 2.0), (b"d\x1ftenant", 2.5)]
        wide = ActivityTracker(keys=keys, redis=client, max_tracked=10 * _FLUSH_CHUNK)
        for i in range(_FLUSH_CHUNK + 5):
            wide.record(f"u{i}")
        await wide.flush()
        assert await client.zscore(keys.active_subjects, f"u{_FLUSH_CHUNK + 4}") == 1.0
        assert await client.zcard(keys.active_subjects) == _FLUSH_CHUNK + 5 + 3
    finally:
        await client.aclose()
