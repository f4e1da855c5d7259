"""One Redis round trip for everything a request (or several) asks in the same loop turn.

Callers hand `RedisBatcher.run` a function that queues commands on a pipeline; every call
made before the event loop's next turn shares one pipeline, so a request that looks up its
token's revocation state and charges its check limit concurrently pays one round trip for
both, and concurrent requests share theirs too. Each caller gets its own commands' results,
or the exception of the first of them that failed (or of the whole round trip).

In a Redis Cluster the pipeline is redis-py's cluster pipeline: the commands are grouped by
the node serving their slot and the groups sent at once, so the round trip is one per node
involved, in parallel (callers keep keys that one command reads together in one slot).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from app.adapters.redis.client import AnyPipeline, RedisClient

Queue = Callable[[AnyPipeline], object]  # queues commands; what it returns is ignored
CLOSE_SECONDS = 1.0  # how long round trips in flight may take to end at close, then to cancel


class RedisBatcher:
    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self.round_trips = 0  # pipelines sent (for metrics and tests)
        self._queued: list[tuple[Queue, asyncio.Future[list[Any]]]] = []
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()
        self._closed = False

    async def run(self, queue: Queue) -> list[Any]:
        if self._closed:
            raise RedisConnectionError("the instance is stopping")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queued.append((queue, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def stop(self) -> None:
        """Refuse new round trips from now on (those in flight go on)."""
        self._closed = True

    async def close(self) -> None:
        """Before the client closes: refuse new round trips, let those in flight end
        (briefly), cancel the rest. A round trip sent after the client's close would open a
        connection on the closed client that nothing closes any more."""
        self.stop()
        if self._sending:
            _, pending = await asyncio.wait(set(self._sending), timeout=CLOSE_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CLOSE_SECONDS)

    def _flush(self) -> None:
        batch, self._queued, self._scheduled = self._queued, [], False
        if self._closed:
            _fail(batch, RedisConnectionError("the instance is stopping"))
            return
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Queue, asyncio.Future[list[Any]]]]) -> None:
        sizes: list[int] = []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for queue, _ in batch:
                    before = len(pipe)
                    queue(pipe)
                    sizes.append(len(pipe) - before)
                results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # every waiter hears about it, cancellation included
            _fail(batch, exc if isinstance(exc, Exception) else ConnectionError("cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        self.round_trips += 1
        at = 0
        for (_, future), size in zip(batch, sizes, strict=True):
            part = results[at : at + size]
            at += size
            if future.done():
                continue
            error = next((r for r in part if isinstance(r, Exception)), None)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(list(part))


def _fail(batch: list[tuple[Queue, asyncio.Future[list[Any]]]], error: Exception) -> None:
    """Every waiter of `batch` still waiting gets `error`."""
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
