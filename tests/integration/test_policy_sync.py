"""Policy changes reach every instance: pub/sub announcements, and the database poll.

Two apps (two instances) share one PostgreSQL database and one Redis key space. Changes are
made the way writers make them: rules and `bump_revision` in one transaction, then an
announcement (a local `engine.load`, or `announce_revision` for processes without an engine).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from app.adapters.redis.sync import announce_revision, publish_revision
from app.cache.keys import CacheKeys
from app.config import Settings
from tests.conftest import SettingsFactory
from tests.support.apps import serve, services_of
from tests.support.policies import EXAMPLES
from tests.support.policy_writes import add_rule, remove_rule
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

ZOE_WRITES = {"subject": "zoe", "resource": "api:schemas", "action": "write"}


@asynccontextmanager
async def two_instances(
    settings: Settings,
) -> AsyncIterator[tuple[tuple[FastAPI, httpx.AsyncClient], tuple[FastAPI, httpx.AsyncClient]]]:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(serve(settings))
        b = await stack.enter_async_context(serve(settings))
        # B's start-up took a new revision; A adopts it (announced, or polled).
        await wait_for(
            lambda: _same_revision(a[0], b[0]), timeout=settings.policy_poll_interval + 2
        )
        if settings.redis_url:  # both listen before a test announces (else they only poll)
            for _, client in (a, b):
                await wait_for(partial(_subscribed, client), timeout=10)
        yield a, b


async def _subscribed(client: httpx.AsyncClient) -> bool:
    ready = (await client.get("/readyz")).json()
    return bool(ready["checks"]["cache"]["policy_sync"] == "pubsub+db-poll")


async def _same_revision(a: FastAPI, b: FastAPI) -> bool:
    return services_of(a).engine.revision == services_of(b).engine.revision


async def check(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/authz/check", json=body)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def allowed_on(client: httpx.AsyncClient, body: dict[str, Any], want: bool) -> Any:
    async def condition() -> bool:
        return (await check(client, body))["allowed"] is want

    return condition


async def test_announced_db_change_flips_the_other_instance_before_its_poll(
    make_settings: SettingsFactory, pg_url: str, redis_url: str
) -> None:
    # The poll is slowed to 30 s, so only the announcement can deliver the change within 10 s.
    settings = make_settings(database_url=pg_url, redis_url=redis_url, policy_poll_interval=30)
    redis = Redis.from_url(redis_url)
    keys = CacheKeys(settings.key_prefix)
    try:
        async with two_instances(settings) as (_a, (_app_b, b)):
            assert (await check(b, ZOE_WRITES))["allowed"] is False
            revision = await add_rule(pg_url, "g", "zoe", "developer")
            await publish_revision(redis, keys=keys, revision=revision)
            await wait_for(allowed_on(b, ZOE_WRITES, True), timeout=10)
            assert int(await redis.get(keys.policy_rev) or 0) == revision
            revision = await remove_rule(pg_url, "g", "zoe", "developer")
            await publish_revision(redis, keys=keys, revision=revision)
            await wait_for(allowed_on(b, ZOE_WRITES, False), timeout=10)
    finally:
        await redis.aclose()


@pytest.mark.parametrize(("trigger", "bump"), [("api", False), ("file", True), ("cli", False)])
async def test_a_local_load_is_announced_to_the_other_instance(
    make_settings: SettingsFactory, pg_url: str, redis_url: str, trigger: str, bump: bool
) -> None:
    """What the admin API / file watcher / CLI do on instance A reaches instance B."""
    settings = make_settings(database_url=pg_url, redis_url=redis_url, policy_poll_interval=30)
    async with two_instances(settings) as ((app_a, a), (app_b, b)):
        await add_rule(pg_url, "g", "zoe", "developer")
        loaded = await services_of(app_a).engine.load(trigger=trigger, bump=bump)
        assert (await check(a, ZOE_WRITES))["allowed"] is True
        await wait_for(allowed_on(b, ZOE_WRITES, True), timeout=10)
        assert services_of(app_b).engine.revision == loaded.revision
        metrics = (await b.get("/metrics")).text
        assert 'oms_auth_policy_reloads_total{result="ok",trigger="remote"}' in metrics


async def test_cli_announcement_helper(
    make_settings: SettingsFactory, pg_url: str, redis_url: str
) -> None:
    settings = make_settings(database_url=pg_url, redis_url=redis_url, policy_poll_interval=30)
    async with two_instances(settings) as (_a, (_app_b, b)):
        revision = await add_rule(pg_url, "g", "zoe", "developer")
        assert await announce_revision(settings, revision) is True
        await wait_for(allowed_on(b, ZOE_WRITES, True), timeout=10)
    assert await announce_revision(make_settings(redis_url=None), 1) is False


async def test_without_redis_the_database_poll_propagates_changes(
    make_settings: SettingsFactory, pg_url: str
) -> None:
    settings = make_settings(database_url=pg_url, redis_url=None, policy_poll_interval=0.2)
    async with two_instances(settings) as ((_app_a, a), (_app_b, b)):
        ready = (await b.get("/readyz")).json()
        assert ready["checks"]["cache"]["policy_sync"] == "db-poll"
        await add_rule(pg_url, "g", "zoe", "developer")  # nobody announces anything
        await wait_for(allowed_on(b, ZOE_WRITES, True), timeout=10)
        await remove_rule(pg_url, "g", "zoe", "developer")
        await wait_for(allowed_on(b, ZOE_WRITES, False), timeout=10)
        await wait_for(allowed_on(a, ZOE_WRITES, False), timeout=10)
        metrics = (await b.get("/metrics")).text
        assert 'oms_auth_policy_sync_total{result="reloaded",source="poll"}' in metrics


async def test_no_cached_decision_from_an_older_revision_after_the_new_one(
    make_settings: SettingsFactory, pg_url: str, redis_url: str
) -> None:
    """Generic path (cached): once B answers under the new revision, it never goes back."""
    settings = make_settings(
        database_url=pg_url,
        redis_url=redis_url,
        policy_dir=EXAMPLES / "abac",
        policy_poll_interval=30,
    )
    ask = {"subject": "zed", "resource": "doc:7", "action": "archive"}
    async with two_instances(settings) as ((_app_a, a), (_app_b, b)):
        for client in (a, b):  # both instances cache the old answer (L1 and Redis)
            first, second = await check(client, ask), await check(client, ask)
            assert first["allowed"] is second["allowed"] is False
            assert second["cached"] is True
        old = (await check(b, ask))["policy_revision"]
        revision = await add_rule(pg_url, "g", "zed", "records-manager")
        await announce_revision(settings, revision)

        async def arrived() -> bool:
            answer = await check(b, ask)
            if answer["policy_revision"] < revision:  # still the old revision, and its answer
                assert answer["allowed"] is False and answer["policy_revision"] == old
                return False
            assert answer["allowed"] is True
            return True

        await wait_for(
            arrived, timeout=10, interval=0.002, message="the change did not arrive within 10 s"
        )
        for _ in range(50):  # and from then on, never the older answer again
            answer = await check(b, ask)
            assert answer["allowed"] is True and answer["policy_revision"] >= revision
