"""Redis stopped and started again under a running instance: slower, never wrong, no 5xx.

The test runs its own `redis-server` on a spare port (never the machine's shared one).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from loguru import logger

from tests.conftest import SettingsFactory
from tests.support.apps import serve, services_of
from tests.support.policies import EXAMPLES
from tests.support.policy_writes import add_rule
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

ERIN_READS = {"subject": "erin", "resource": "doc:1", "action": "read"}
ZED_ARCHIVES = {"subject": "zed", "resource": "doc:2", "action": "archive"}


async def decide(client: httpx.AsyncClient, body: dict[str, Any]) -> bool:
    response = await client.post("/api/v1/authz/check", json=body)
    assert response.status_code == 200, response.text
    allowed: bool = response.json()["allowed"]
    return allowed


async def cache_status(client: httpx.AsyncClient) -> str:
    response = await client.get("/readyz")
    assert response.status_code == 200  # degraded is still ready
    assert response.json()["status"] == "ready"
    status: str = response.json()["checks"]["cache"]["status"]
    return status


async def test_redis_down_and_back(
    make_settings: SettingsFactory, pg_url: str, private_redis: RedisServer
) -> None:
    settings = make_settings(
        database_url=pg_url,
        redis_url=private_redis.url,
        policy_dir=EXAMPLES / "abac",  # generic path: decisions use both cache tiers
        policy_poll_interval=0.3,
    )
    async with serve(settings) as (app, client):
        events: list[str] = []
        sink = logger.add(lambda m: events.append(m.record["message"]), level="INFO")
        try:
            assert await decide(client, ERIN_READS) is True
            assert await decide(client, ZED_ARCHIVES) is False
            assert await cache_status(client) == "ok"

            private_redis.stop()
            for _ in range(3):  # cached and fresh decisions alike, never a 5xx
                assert await decide(client, ERIN_READS) is True
                assert await decide(client, ZED_ARCHIVES) is False
                assert await decide(client, {**ERIN_READS, "resource": "doc:new"}) is True
            batch = await client.post(
                "/api/v1/authz/check/batch", json={"checks": [ERIN_READS, ZED_ARCHIVES]}
            )
            assert [r["allowed"] for r in batch.json()["results"]] == [True, False]
            perms = await client.get("/api/v1/users/erin/permissions")
            assert perms.status_code == 200 and perms.json()["roles"] == ["records-manager"]
            assert await cache_status(client) == "degraded"
            assert "cache.redis.unavailable" in events
            metrics = (await client.get("/metrics")).text
            assert "oms_auth_redis_up 0.0" in metrics
            assert 'oms_auth_redis_state_changes_total{state="down"} 1.0' in metrics

            # policy changes still arrive, from the database
            await add_rule(pg_url, "g", "zed", "records-manager")
            await wait_for(lambda: decide(client, ZED_ARCHIVES), timeout=10)

            private_redis.start()  # same port: the instance must find it again by itself

            async def recovered() -> bool:
                return await cache_status(client) == "ok"

            await wait_for(recovered, timeout=10)
            assert "cache.redis.recovered" in events
            sync = services_of(app).cache.sync

            async def subscribed() -> bool:
                return sync.subscribed

            await wait_for(subscribed, timeout=10)
            assert "oms_auth_redis_up 1.0" in (await client.get("/metrics")).text
            # Redis is used again: a fresh decision lands in the restarted server
            assert await decide(client, {**ERIN_READS, "resource": "doc:after"}) is True
            stored = private_redis.client()
            try:
                decision_keys = list(stored.scan_iter(f"{settings.key_prefix}:decision:*"))
            finally:
                stored.close()
            assert decision_keys
        finally:
            logger.remove(sink)
