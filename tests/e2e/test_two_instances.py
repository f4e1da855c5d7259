"""Two real server processes sharing one PostgreSQL database and one Redis.

A rule change committed for instance A (rules and `bump_revision` in one transaction, then
announced with `app.adapters.redis.sync.publish_revision`, as the admin API's reload does) flips the
decision on instance B, and its removal flips it back; B never answers from
an older revision once it has answered from the newer one. With Redis stopped, the database
poll carries the change instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.adapters.redis.sync import publish_revision
from app.cache.keys import CacheKeys
from tests.support.policies import EXAMPLES, SHIPPED
from tests.support.policy_writes import add_rule, remove_rule
from tests.support.redis_server import RedisServer
from tests.support.server import instances
from tests.support.waiting import DEADLINE_SCALE, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ZED_ARCHIVES = {"subject": "zed", "resource": "doc:7", "action": "archive"}
ZOE_WRITES = {"subject": "zoe", "resource": "api:schemas", "action": "write"}


def env_for(
    database_url: str, service_name: str, redis_url: str, policy_dir: Path
) -> dict[str, str]:
    return {
        "OMS_AUTH_DATABASE_URL": database_url,
        "OMS_AUTH_REDIS_URL": redis_url,
        "OMS_AUTH_SERVICE_NAME": service_name,
        "OMS_AUTH_POLICY_DIR": str(policy_dir),
        "OMS_AUTH_POLICY_SOURCE": "files+db",
        "OMS_AUTH_POLICY_WATCH": "false",
        "OMS_AUTH_LOG_LEVEL": "WARNING",
        "OMS_AUTH_ENVIRONMENT": "test",
    }


async def ask(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(url + "/api/v1/authz/check", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def watch_flip(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], *, want: bool, since: int
) -> float:
    """Seconds until B answers `want`; every answer is checked on the way: before the flip
    the old decision, after it the new one, and never a revision older than one already seen."""
    started = time.monotonic()
    seen = since
    flipped_at: float | None = None
    while True:
        answer = await ask(client, url, body)
        assert answer["policy_revision"] >= seen, "answered from an older revision"
        seen = answer["policy_revision"]
        if flipped_at is None and answer["allowed"] is want:
            flipped_at = time.monotonic() - started
        if flipped_at is not None:
            assert answer["allowed"] is want, "flipped back to the old decision"
            if time.monotonic() - started > flipped_at + 0.3:  # keep asking a little longer
                return flipped_at
        elif time.monotonic() - started > 20 * DEADLINE_SCALE:
            raise AssertionError("the change did not arrive")


async def test_change_on_a_flips_b(
    pg_url: str, redis_url: str, service_name: str, tmp_path: Path
) -> None:
    """Generic-path policy: B caches decisions (L1 and Redis) and must still never lag."""
    env = env_for(pg_url, service_name, redis_url, EXAMPLES / "abac")
    keys = CacheKeys(f"{service_name}:v1")
    redis = Redis.from_url(redis_url)
    try:
        with instances(env, tmp_path) as (a, b):
            async with httpx.AsyncClient(timeout=5) as client:
                for url in (a.url, b.url):  # both cache the current answer
                    await ask(client, url, ZED_ARCHIVES)
                    assert (await ask(client, url, ZED_ARCHIVES))["cached"] is True
                before = (await ask(client, b.url, ZED_ARCHIVES))["policy_revision"]

                revision = await add_rule(pg_url, "g", "zed", "records-manager")
                await publish_revision(redis, keys=keys, revision=revision)
                await watch_flip(client, b.url, ZED_ARCHIVES, want=True, since=before)
                assert (await ask(client, a.url, ZED_ARCHIVES))["allowed"] is True

                revision = await remove_rule(pg_url, "g", "zed", "records-manager")
                await publish_revision(redis, keys=keys, revision=revision)
                since = revision - 1
                await watch_flip(client, b.url, ZED_ARCHIVES, want=False, since=since)
    finally:
        await redis.aclose()


async def test_with_redis_down_the_database_poll_carries_the_change(
    pg_url: str, service_name: str, tmp_path: Path, private_redis: RedisServer
) -> None:
    env = env_for(pg_url, service_name, private_redis.url, SHIPPED)
    env["OMS_AUTH_POLICY_POLL_INTERVAL"] = "0.5"
    with instances(env, tmp_path) as (_a, b):
        async with httpx.AsyncClient(timeout=5) as client:
            before = (await ask(client, b.url, ZOE_WRITES))["policy_revision"]
            private_redis.stop()
            assert (await ask(client, b.url, ZOE_WRITES))["allowed"] is False  # still correct

            async def degraded_but_ready() -> bool:
                response = await client.get(b.url + "/readyz")
                body = response.json()
                assert response.status_code == 200 and body["status"] == "ready"
                return bool(body["checks"]["cache"]["status"] == "degraded")

            await wait_for(degraded_but_ready, timeout=10)

            await add_rule(pg_url, "g", "zoe", "developer")  # nobody can announce it
            await watch_flip(client, b.url, ZOE_WRITES, want=True, since=before)
            revision = await remove_rule(pg_url, "g", "zoe", "developer")
            since = revision - 1
            await watch_flip(client, b.url, ZOE_WRITES, want=False, since=since)
