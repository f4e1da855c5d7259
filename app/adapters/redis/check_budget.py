"""The per-caller check limit, shared through Redis, at most one round trip per caller per window.

A decision service answers thousands of checks a second per caller; charging each one in
Redis would cost more than deciding it. Each process keeps what it last learned of a caller's
usage and counts its own checks locally; it asks Redis again (adding what it counted since)
when that knowledge is older than `window` seconds or the limit's period rolls over; while it
is fresh, a charge that would cross the limit is refused locally. So a caller costs at most
one round trip per window per process, sent together with anything else the request asks Redis
in the same loop turn (`RedisBatcher`). A process may thus admit up to one window's worth of
checks that other processes counted meanwhile; a refused charge is given back.

Counting: a sliding-window counter (this period's count plus the previous period's, weighted
by how much of it still overlaps the last `period` seconds), the approximation Cloudflare and
the `limits` library use. Keys: `{prefix}:rate:checks:<caller>:<period number>`; in a Redis
Cluster `{prefix}:rate:checks:{<caller>}:<period number>`, so a caller's two periods share
a slot (one node answers the round trip).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.adapters.redis.batch import RedisBatcher
from app.adapters.redis.client import AnyPipeline, is_cluster
from app.security.rate_limits import OverLimit


@dataclass
class _Usage:
    synced_at: float
    period: int  # number of the period `current` belongs to
    previous: int  # shared count of the previous period
    current: int  # shared count of this period, as last seen
    pending: int = 0  # counted here, not yet sent


class CheckBudget:
    def __init__(
        self,
        batcher: RedisBatcher,
        *,
        amount: int,
        period_seconds: int,
        prefix: str,
        window: float,
        clock: Callable[[], float] = time.time,
        max_callers: int = 100_000,
    ) -> None:
        self.batcher = batcher
        self.amount = amount
        self.period = max(1, period_seconds)
        self.prefix = f"{prefix}:rate:checks:"
        self._tagged = is_cluster(batcher.redis)
        self.window = window
        self.clock = clock
        self.max_callers = max_callers
        self._usage: dict[str, _Usage] = {}

    def _estimate(self, usage: _Usage, now: float) -> float:
        overlap = 1.0 - (now % self.period) / self.period
        return usage.previous * overlap + usage.current + usage.pending

    def _retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.period - now % self.period))

    async def charge(self, caller: str, cost: int) -> None:
        """Count `cost` checks for `caller`; raise `OverLimit` when they would cross the limit.
        Redis errors propagate (the caller falls back to counting in process)."""
        now = self.clock()
        number = int(now // self.period)
        usage = self._usage.get(caller)
        if usage is not None and usage.period == number and now - usage.synced_at < self.window:
            if self._estimate(usage, now) + cost > self.amount:
                # Others' checks only add to what was seen: refused without asking again.
                raise OverLimit(self._retry_after(now))
            usage.pending += cost
            return
        await self._sync(caller, cost, now, number, usage)

    async def _sync(
        self, caller: str, cost: int, now: float, number: int, usage: _Usage | None
    ) -> None:
        carried = usage.pending if usage is not None else 0
        if usage is not None:
            usage.pending -= carried  # taken now: concurrent charges must not send it twice
        send = carried + cost
        name = f"{{{caller}}}" if self._tagged else caller
        current_key = f"{self.prefix}{name}:{number}"
        previous_key = f"{self.prefix}{name}:{number - 1}"
        ttl_ms = self.period * 2 * 1000

        def queue(pipe: AnyPipeline) -> None:
            pipe.incrby(current_key, send)
            pipe.pexpire(current_key, ttl_ms)
            pipe.get(previous_key)

        try:
            current, _, previous = await self.batcher.run(queue)
        except Exception:
            if usage is not None:
                usage.pending += carried
            raise
        fresh = _Usage(now, number, int(previous or 0), int(current))
        if len(self._usage) >= self.max_callers and caller not in self._usage:
            self._usage.clear()  # bounded: forgetting only costs a round trip
        self._usage[caller] = fresh
        if self._estimate(fresh, now) <= self.amount:
            return
        fresh.current -= cost
        await self._give_back(current_key, cost)
        raise OverLimit(self._retry_after(now))

    async def _give_back(self, key: str, cost: int) -> None:
        # A refund that fails only makes the caller wait a little longer.
        with contextlib.suppress(Exception):
            await self.batcher.run(lambda pipe: pipe.decrby(key, cost))
