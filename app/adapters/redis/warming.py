"""Cache warming: the most active subjects get their roles and permission sets precomputed.

`ActivityTracker.record` counts checks per subject in process (a dict increment on the hot
path, nothing more); every `flush_interval` the counts are added to a Redis sorted set shared
by all instances, so a fresh instance warms what the whole fleet uses. Without Redis the local
counts decide. Counts are halved every `decay_every` flushes so "active" means recently.

`CacheWarmer.schedule` (after start-up and after each policy change) starts one background
task that computes, in small chunks and worker threads, the permission sets of the top
subjects under the new snapshot (which also fills its role cache); a newer change cancels a
warm still running. Requests never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from loguru import logger

from app.adapters.redis.availability import RedisAvailability, is_redis_failure
from app.adapters.redis.client import RedisClient
from app.cache.keys import CacheKeys
from app.cache.metrics import CacheMetrics
from app.decisions.permissions import PermissionService
from app.policy.engine import PolicyEngine
from app.policy.snapshot import PolicySnapshot

SEP = "\x1f"  # between subject and domain in a tracked member (ids carry no control chars)
Subject = tuple[str, str | None]

# ARGV: decay (1: halve every count after adding), how many to keep (-1: no trim), then
# member, increment pairs. Same effect as ZINCRBY per member, ZUNIONSTORE with weight 0.5 and
# ZREMRANGEBYRANK, in one round trip whose client-side cost does not grow per member.
_ADD_ACTIVITY = """
local key = KEYS[1]
for i = 3, #ARGV, 2 do
  redis.call('ZINCRBY', key, ARGV[i + 1], ARGV[i])
end
if ARGV[1] == '1' then
  redis.call('ZUNIONSTORE', key, 1, key, 'WEIGHTS', 0.5)
end
local keep = tonumber(ARGV[2])
if keep >= 0 then
  redis.call('ZREMRANGEBYRANK', key, 0, -(keep + 1))
end
return 1
"""
_FLUSH_CHUNK = 2_000


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _subject(member: str) -> Subject:
    subject, _, domain = member.partition(SEP)
    return subject, domain or None


class ActivityTracker:
    def __init__(
        self,
        *,
        keys: CacheKeys,
        redis: RedisClient | None = None,
        availability: RedisAvailability | None = None,
        max_tracked: int = 10_000,
        decay_every: int = 60,
    ) -> None:
        self.keys = keys
        self.redis = redis
        self.availability = availability
        self.max_tracked = max_tracked
        self.decay_every = decay_every
        self._pending: dict[str, int] = {}
        self._counts: dict[str, float] = {}
        self._flushes = 0

    def record(self, subject: str, domain: str | None = None) -> None:
        member = subject if domain is None else f"{subject}{SEP}{domain}"
        pending = self._pending
        pending[member] = pending.get(member, 0) + 1

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        self._flushes += 1
        decay = self._flushes % self.decay_every == 0
        counts = self._counts
        for member, n in pending.items():
            counts[member] = counts.get(member, 0.0) + n
        if decay:
            for member in counts:
                counts[member] /= 2
        if len(counts) > 2 * self.max_tracked:
            top = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[: self.max_tracked]
            self._counts = dict(top)
        if self._redis_usable and (pending or decay):
            await self._flush_redis(pending, decay)

    @property
    def _redis_usable(self) -> bool:
        return self.redis is not None and (self.availability is None or self.availability.usable)

    async def _flush_redis(self, pending: dict[str, int], decay: bool) -> None:
        assert self.redis is not None
        key = self.keys.active_subjects
        members = list(pending.items())
        try:
            # One script call per chunk instead of one ZINCRBY per subject: every worker
            # flushes the subjects it saw, so per-command client work would grow with workers.
            for start in range(0, max(1, len(members)), _FLUSH_CHUNK):
                chunk = members[start : start + _FLUSH_CHUNK]
                last = start + _FLUSH_CHUNK >= len(members)
                args: list[str | int] = [int(decay and last), self.max_tracked if last else -1]
                for member, n in chunk:
                    args += (member, n)
                await self.redis.eval(_ADD_ACTIVITY, 1, key, *args)
        except Exception as exc:
            if not is_redis_failure(exc):
                raise
            if self.availability is not None:
                self.availability.failed("activity", exc)

    async def top(self, n: int) -> list[Subject]:
        """The `n` most active (subject, domain) pairs, fleet-wide when Redis answers."""
        if n <= 0:
            return []
        if self._redis_usable:
            assert self.redis is not None
            try:
                members = await self.redis.zrevrange(self.keys.active_subjects, 0, n - 1)
                return [_subject(_text(m)) for m in members]
            except Exception as exc:
                if not is_redis_failure(exc):
                    raise
                if self.availability is not None:
                    self.availability.failed("activity", exc)
        merged = dict(self._counts)
        for member, count in self._pending.items():
            merged[member] = merged.get(member, 0.0) + count
        ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [_subject(member) for member, _ in ranked]


class CacheWarmer:
    def __init__(
        self,
        engine: PolicyEngine,
        permissions: PermissionService,
        tracker: ActivityTracker,
        *,
        subjects: int,
        flush_interval: float = 5.0,
        chunk: int = 8,
        metrics: CacheMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.permissions = permissions
        self.tracker = tracker
        self.subjects = subjects
        self.flush_interval = flush_interval
        self.chunk = chunk
        self.metrics = metrics
        self.last_warmed: tuple[int, int] | None = None  # (revision, subjects) of the last run
        self._warm: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._flusher = asyncio.get_running_loop().create_task(
            self._flush_forever(), name="activity-flush"
        )
        self.schedule()

    def schedule(self) -> None:
        """Warm for the live snapshot in the background (replacing a warm still running)."""
        if self.subjects <= 0 or not self.engine.loaded or self._closed:
            return
        if self._warm is not None and not self._warm.done():
            self._warm.cancel()
        snapshot = self.engine.snapshot
        self._warm = asyncio.get_running_loop().create_task(self._run(snapshot), name="cache-warm")

    async def wait(self) -> None:
        """Until the current warm (if any) has finished (tests, benchmarks)."""
        if self._warm is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._warm

    async def _run(self, snapshot: PolicySnapshot) -> None:
        started = time.perf_counter()
        try:
            subjects = await self.tracker.top(self.subjects)
            done = 0
            for i in range(0, len(subjects), self.chunk):
                if self.engine.snapshot is not snapshot:
                    return  # a newer policy is live; its own warm takes over
                done += await self.permissions.warm(snapshot, subjects[i : i + self.chunk])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("cache.warm.failed", error=f"{type(exc).__name__}: {exc}")
            return
        seconds = time.perf_counter() - started
        self.last_warmed = (snapshot.revision, done)
        if self.metrics is not None:
            self.metrics.warm_seconds.observe(seconds)
            self.metrics.warmed_subjects.set(done)
        logger.info(
            "cache.warmed", revision=snapshot.revision, subjects=done, seconds=round(seconds, 4)
        )

    async def _flush_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.tracker.flush()
            except Exception:
                logger.exception("cache.activity.flush_failed")

    def stop(self) -> None:
        """Signal and cancel the warm and the activity flusher at once, without waiting."""
        self._closed = True
        for task in (self._warm, self._flusher):
            if task is not None:
                task.cancel()

    async def close(self) -> None:
        self.stop()
        tasks = [t for t in (self._warm, self._flusher) if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=3)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.tracker.flush(), timeout=2)
