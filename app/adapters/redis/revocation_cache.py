"""The Redis fast path for revocation (see `app.tokens.revocation` for the protocol).

Keys (`{service}:{version}:auth:...`): `revoked:jti:<jti>` and `revoked:sid:<family>` with a TTL
equal to the time the entry still matters, `valid_after:<subject>` (epoch ms), and the
`revocations:complete` marker. One MGET answers a whole batch, marker included, so a lookup is
one round trip (shared, through `RedisBatcher`, with whatever else the request asks Redis in
the same loop turn); without the marker the cache does not answer at all.

In a Redis Cluster the keys start with `{{service}:{version}:auth}` instead (a hash tag), so
all of them live in one slot and the lookup stays one MGET; the channel keeps its name.

Every write is also announced on `{service}:{version}:auth:revocations` (pub/sub, in the same
pipeline), so instances drop what they keep of recent lookups (`Revocations.forget_recent`)
as soon as the message arrives instead of at the end of their window.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Collection

from loguru import logger

from app.adapters.redis.batch import RedisBatcher
from app.adapters.redis.client import (
    AnyPipeline,
    RedisClient,
    hash_tag,
    queue_mget,
    queue_publish,
    subscription,
)
from app.tokens.models import RevocationState
from app.tokens.revocation import MAX_TOKEN_LIFETIME


class RedisRevocationCache:
    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str,
        clock: Callable[[], float] = time.time,
        batcher: RedisBatcher | None = None,
    ) -> None:
        self.redis = redis
        self.batcher = batcher or RedisBatcher(redis)
        self.clock = clock
        base = hash_tag(redis, f"{prefix}:auth")  # one slot in a cluster: one MGET
        self._jti = f"{base}:revoked:jti:"
        self._sid = f"{base}:revoked:sid:"
        self._after = f"{base}:valid_after:"
        self.complete_key = f"{base}:revocations:complete"
        self.channel = f"{prefix}:auth:revocations"

    async def lookup(
        self, *, jtis: Collection[str], sessions: Collection[str], subjects: Collection[str]
    ) -> RevocationState | None:
        j, s, u = list(jtis), list(sessions), list(subjects)
        keys = [
            self.complete_key,
            *(self._jti + x for x in j),
            *(self._sid + x for x in s),
            *(self._after + x for x in u),
        ]
        values = (await self.batcher.run(lambda pipe: queue_mget(pipe, keys)))[0]
        if values[0] is None:
            return None
        rest = values[1:]
        state = RevocationState()
        for name, value in zip(j, rest[: len(j)], strict=True):
            if value is not None:
                state.jtis[name] = float(value)
        for name, value in zip(s, rest[len(j) : len(j) + len(s)], strict=True):
            if value is not None:
                state.sessions[name] = float(value)
        for name, value in zip(u, rest[len(j) + len(s) :], strict=True):
            if value is not None:
                state.valid_after[name] = int(value)
        return state

    async def remember(self, state: RevocationState) -> None:
        if not state:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            self._queue(pipe, state)
            queue_publish(pipe, self.channel, b"1")
            await pipe.execute()

    async def watch(self, on_news: Callable[[], None], *, retry_seconds: float = 1.0) -> None:
        """Call `on_news()` on every announced write, and whenever the subscription is
        (re)established (announcements made while it was down are lost). Runs until
        cancelled; Redis failures are retried."""
        while True:
            try:
                async with subscription(self.redis, self.channel) as pubsub:
                    on_news()
                    task = asyncio.current_task()
                    # A cancellation can be swallowed by redis-py's read timeout: check too.
                    while not (task is not None and task.cancelling()):
                        if await pubsub.get_message(timeout=1.0) is not None:
                            on_news()
                    raise asyncio.CancelledError
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.debug("auth.revocation.watch_failed", error=type(exc).__name__)
            on_news()
            await asyncio.sleep(retry_seconds)

    async def fill(self, state: RevocationState, *, complete_for: float) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            self._queue(pipe, state)
            pipe.set(self.complete_key, str(self.clock()), px=int(complete_for * 1000))
            await pipe.execute()

    async def forget_completeness(self) -> None:
        await self.redis.delete(self.complete_key)

    def _queue(self, pipe: AnyPipeline, state: RevocationState) -> None:
        now = self.clock()
        for jti, until in state.jtis.items():
            self._set(pipe, self._jti + jti, until, until - now)
        for sid, until in state.sessions.items():
            self._set(pipe, self._sid + sid, until, until - now)
        for subject, ms in state.valid_after.items():
            # A token issued before `ms` lives at most MAX_TOKEN_LIFETIME past it.
            ttl = ms / 1000 + MAX_TOKEN_LIFETIME - now
            if ttl > 0:
                # Keep the larger value if another writer already stored a later cut-off.
                pipe.eval(_SET_MAX, 1, self._after + subject, str(ms), str(math.ceil(ttl * 1000)))

    @staticmethod
    def _set(pipe: AnyPipeline, key: str, value: float, ttl: float) -> None:
        if ttl > 0:
            pipe.set(key, repr(value), px=max(1, math.ceil(ttl * 1000)))


# SET key to ARGV[1] unless it already holds a larger number; TTL ARGV[2] ms.
_SET_MAX = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
