"""Shutdown of one instance's Redis users, against the machine's Redis.

The shutdown bounds each of its steps (`app.services.Lifecycle`); a step cut short must not
leave a Redis user running, since Redis closes next and a user still running would open a
connection on the closed client that nothing ever closes. So every part of a step is told
to stop before any part is waited for: these tests cut the step short at its first wait.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import SettingsFactory
from tests.support.apps import serve, services_of

pytestmark = pytest.mark.integration

BACKGROUND = {"policy-sub", "policy-poll", "redis-probe", "cache-warm", "activity-flush"}


def stopping(task: asyncio.Task[object]) -> bool:
    return task.done() or task.cancelling() > 0


async def test_a_cache_close_cut_short_has_stopped_every_part(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    async with serve(make_settings(redis_url=redis_url, cache_warm_subjects=10)) as (app, _):
        cache = services_of(app).cache
        assert cache.availability is not None
        # Redis looks down: the probe runs, as it would after a failed operation under load.
        cache.availability.failed("test", RedisConnectionError("marked down by the test"))
        tasks = {t.get_name(): t for t in asyncio.all_tasks() if t.get_name() in BACKGROUND}
        assert {"policy-sub", "policy-poll", "redis-probe", "activity-flush"} <= tasks.keys()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):  # the step's bound, reached at once
                await cache.close()
        running_on = [name for name, task in tasks.items() if not stopping(task)]
        assert running_on == []


async def test_a_token_close_cut_short_refuses_new_round_trips(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    async with serve(make_settings(redis_url=redis_url, decision_auth="token")) as (app, _):
        tokens = services_of(app).tokens
        assert tokens.batcher is not None
        started = list(tokens._tasks)
        assert started
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await tokens.close()
        assert all(stopping(task) for task in started)
        with pytest.raises(RedisConnectionError, match="stopping"):
            await tokens.batcher.run(lambda pipe: pipe.ping())
