"""`OMS_AUTH_REDIS_URL=redis+sentinel://...`: a Sentinel-managed primary, and a failover
during checks. Real servers (a primary, its replica, one sentinel) on spare ports."""

from __future__ import annotations

import asyncio

import pytest

from app.addresses import parse_sentinel_url
from app.config import Settings
from tests.support.redis_sentinel import SERVICE, SentinelSet, sentinel_set
from tests.support.tokens import AppFactory, bearer
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["sentinel_set"]  # the fixture, used by name

CHECK = {"subject": "alice", "resource": "api:schemas", "action": "write"}


def test_sentinel_urls_are_parsed_or_refused_clearly() -> None:
    target = parse_sentinel_url("redis+sentinel://:s%40cret@h1:26379,[::1]:26380/main/2")
    assert target.sentinels == (("h1", 26379), ("::1", 26380))
    assert (target.service, target.db, target.password) == ("main", 2, "s@cret")
    for bad, reason in (
        ("redis+sentinel://h1/main", "HOST:PORT"),
        ("redis+sentinel://h1:1", "/SERVICE"),
        ("redis+sentinel://h1:1/main/x", "integer"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_sentinel_url(bad)
        with pytest.raises(ValueError, match=r"OMS_AUTH_REDIS_URL|redis_url"):
            Settings(redis_url=bad)


async def test_checks_survive_a_primary_failover(
    token_app_factory: AppFactory, sentinel_set: SentinelSet
) -> None:
    async with token_app_factory(
        decision_auth="token", redis_url=sentinel_set.url, caller_cache_seconds=0
    ) as env:
        assert env.services.redis is not None
        alice = await env.login("alice")
        headers = bearer(alice["access_token"])
        statuses: list[int] = []
        stop = asyncio.Event()

        async def keep_checking() -> None:
            while not stop.is_set():
                r = await env.http.post("/api/v1/authz/check", json=CHECK, headers=headers)
                statuses.append(r.status_code)
                await asyncio.sleep(0.01)

        checker = asyncio.create_task(keep_checking())
        before = sentinel_set.primary_port()
        new_primary = await asyncio.to_thread(sentinel_set.failover)
        assert new_primary != before

        async def on_the_new_primary() -> bool:
            # a revocation written now lands on whichever server the client calls primary
            return bool(await env.services.redis.set(f"{SERVICE}:probe", b"1"))  # type: ignore[union-attr]

        await wait_for(on_the_new_primary, timeout=30)
        answered = len(statuses)

        async def more_checks_answered() -> bool:  # a few more checks against the new primary
            return len(statuses) >= answered + 10

        await wait_for(more_checks_answered, timeout=30)
        stop.set()
        await checker
        assert statuses and set(statuses) == {200}, sorted(set(statuses))

        # what is written now is on the new primary: a logout, and the check that follows
        out = await env.http.post("/api/v1/auth/logout", headers=headers)
        assert out.status_code == 204
        refused = await env.http.post("/api/v1/authz/check", json=CHECK, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "AUTH_005"
        prefix = env.settings.key_prefix
        with sentinel_set.client(new_primary) as promoted:

            async def on_new_primary(pattern: str) -> bool:
                return bool(await asyncio.to_thread(promoted.keys, f"{prefix}:{pattern}"))

            # (a write that met the old primary in the switch is retried by the cache)
            await wait_for(lambda: on_new_primary("auth:revoked:*"), timeout=30)
            await wait_for(lambda: on_new_primary("rate:checks:*"), timeout=30)
        assert not env.tokens.service.revocations.has_pending
