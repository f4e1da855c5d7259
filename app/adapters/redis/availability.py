"""Whether Redis is usable right now, so a dead Redis costs a request nothing.

The first failed operation marks Redis down (one warning log event, `oms_auth_redis_up` 0);
while it is down, cache tiers skip Redis entirely instead of waiting for a timeout on every
request, and a probe pings it every `retry_interval` seconds. The first successful ping
marks it up again and runs the recovery callbacks (the policy subscriber resubscribes and
catches up on revisions it may have missed). No restart is ever needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from loguru import logger
from redis.exceptions import RedisClusterException, RedisError

from app.adapters.redis.client import RedisClient
from app.cache.metrics import CacheMetrics

Recovery = Callable[[], Awaitable[None]]


def is_redis_failure(exc: BaseException) -> bool:
    """Connection, timeout and server errors: reasons to carry on without Redis (in a
    cluster also a slot without a serving node, which redis-py reports outside `RedisError`)."""
    return isinstance(exc, RedisError | RedisClusterException | OSError)


class RedisAvailability:
    def __init__(
        self,
        redis: RedisClient,
        *,
        metrics: CacheMetrics | None = None,
        retry_interval: float = 1.0,
    ) -> None:
        self.redis = redis
        self.metrics = metrics
        self.retry_interval = retry_interval
        self._up = True
        self._since_error: str | None = None
        self._recovery: list[Recovery] = []
        self._probe: asyncio.Task[None] | None = None
        self._closed = False
        if metrics is not None:
            metrics.redis_up.set(1)

    @property
    def usable(self) -> bool:
        return self._up

    @property
    def status(self) -> dict[str, str]:
        if self._up:
            return {"status": "ok"}
        return {"status": "degraded", "error": self._since_error or "unreachable"}

    def on_recovery(self, callback: Recovery) -> None:
        self._recovery.append(callback)

    def failed(self, op: str, exc: BaseException) -> None:
        """Record a failed operation; the first one of an outage logs and starts the probe."""
        if self.metrics is not None:
            self.metrics.redis_errors.labels(op=op).inc()
        if not self._up:
            return
        self._up = False
        self._since_error = f"{type(exc).__name__}: {exc}"[:200]
        logger.warning("cache.redis.unavailable", op=op, error=self._since_error)
        if self.metrics is not None:
            self.metrics.redis_up.set(0)
            self.metrics.redis_transitions.labels(state="down").inc()
        self._start_probe()

    def _start_probe(self) -> None:
        if self._probe is not None and not self._probe.done():
            return
        if self._closed:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to probe from
            self._probe = asyncio.get_running_loop().create_task(
                self._probe_until_up(), name="redis-probe"
            )

    async def _probe_until_up(self) -> None:
        while not self._up and not self._closed:
            await asyncio.sleep(self.retry_interval)
            try:
                await self.redis.ping()
            except Exception as exc:
                if not is_redis_failure(exc):
                    logger.exception("cache.redis.probe_failed")
                continue
            await self._recovered()

    async def _recovered(self) -> None:
        self._up = True
        self._since_error = None
        logger.info("cache.redis.recovered")
        if self.metrics is not None:
            self.metrics.redis_up.set(1)
            self.metrics.redis_transitions.labels(state="up").inc()
        for callback in list(self._recovery):
            try:
                await callback()
            except Exception:
                logger.exception("cache.redis.recovery_step_failed", step=repr(callback))

    def stop(self) -> None:
        """Signal and cancel the probe at once, without waiting."""
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()

    async def close(self) -> None:
        self.stop()
        if self._probe is not None:
            await asyncio.wait([self._probe], timeout=3)
