"""Run an app's real lifespan in the test's event loop and talk to it over ASGI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import httpx
from fastapi import FastAPI
from redis.asyncio.cluster import RedisCluster

from app.config import Settings
from app.main import create_app
from app.services import Services
from tests.support.waiting import DEADLINE_SCALE


@dataclass
class _LoopApps:
    """The in-process apps of one event loop (a test may run several side by side, nested)."""

    running: int = 0
    started: list[Services] = field(default_factory=list)  # not yet checked


_LOOPS: WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopApps] = WeakKeyDictionary()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """`app` with its lifespan run, an ASGI client on it.

    When the last app of the test's loop stops, the tasks the apps left behind are settled
    (`settle_leftover_tasks`): not before, since a task started meanwhile may belong to an app
    still running (cancelling its audit writer's wait, say, would stop that app's writer).
    Then no Redis connection of theirs may be open (`assert_redis_closed`)."""
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks()
    apps = _LOOPS.setdefault(loop, _LoopApps())
    apps.running += 1
    try:
        async with app.router.lifespan_context(app):
            apps.started.append(services_of(app))  # checked once every app of the loop stops
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield c
    finally:
        apps.running -= 1
        if not apps.running:
            await settle_leftover_tasks(before)
            stopped, apps.started = apps.started, []
            for each in stopped:
                await assert_redis_closed(each)


async def assert_redis_closed(services: Services) -> None:
    """A stopped app holds no open Redis connection. One opened after its client closed (by
    a background task that outlived the shutdown) would otherwise be found only when the
    collector reaches it, as a `ResourceWarning` in whichever test runs then. It is closed
    here, and the test that left it fails with its address. (A Redis Cluster client's node
    pools are not inspected.)"""
    redis = services.redis
    if redis is None or isinstance(redis, RedisCluster):
        return
    pool = redis.connection_pool
    connections = [*pool._available_connections, *pool._in_use_connections]
    left = [c for c in connections if c.is_connected]
    for connection in left:
        await connection.disconnect()
    if left:
        raise AssertionError(f"Redis connections open after the app stopped: {left!r}")


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with running(app) as c:
        yield app, c


async def settle_leftover_tasks(before: set[asyncio.Task[Any]], seconds: float = 10.0) -> None:
    """Tasks the app started and its shutdown left behind are cancelled until they end.

    A cancellation can be swallowed by a client library's read (redis-py's socket timeout
    is one), and the event loop's own close cancels only once: a survivor would then hang
    the test's teardown until the suite's timeout, naming nothing. Cancelled again here, it
    ends inside the test (its connections closed on a live loop); one that still refuses
    fails the test with its name instead."""
    current = asyncio.current_task()
    deadline = time.monotonic() + seconds * DEADLINE_SCALE
    while True:
        left = [t for t in asyncio.all_tasks() if t not in before and t is not current]
        left = [t for t in left if not t.done()]
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"tasks outlived the app's shutdown: {left!r}")
        for task in left:
            task.cancel()
        await asyncio.wait(left, timeout=0.5)


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services
