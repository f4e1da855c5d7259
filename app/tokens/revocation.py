"""Revocation that loses nothing: the database is the record, a cache the fast path.

Every revocation is written to the database first (if that fails, the revocation fails), then
to the cache. The cache answers a lookup only while it is *complete*: Redis keeps a marker
written after it was filled from the database, with a short TTL; a Redis that was flushed or
restarted has no marker, so lookups fall back to the database (one query for the whole batch)
and the cache is refilled in the background. A revocation whose cache write failed makes this
instance drop the marker as soon as it can, and keeps retrying the write meanwhile. So neither
a Redis outage nor a flush can bring a revoked token back.

Without Redis, `MemoryRevocationCache` is the fast path: filled at start, then kept in step
with the database by `sync` (writes by other instances or the CLI arrive within a poll).

With `recent_seconds` > 0 (`OMS_AUTH_CALLER_CACHE_SECONDS`), what a lookup learned about a
token is also kept in process for that long, so a token used many times a second costs one
lookup per window, not one per use. Revocations recorded by this process take effect here at
once (they clear it); those recorded by other instances or the CLI within the window.

Database fallbacks are coalesced (`CoalescedLookups`): while one fallback query runs, every
lookup that arrives joins the next one, so a burst of cache misses (Redis down, flushed, or
its pool momentarily exhausted) costs the database a few queries on one connection instead
of one query per request, and cannot exhaust the database pool that logins and writes need.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Collection, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from app.cache.local import LocalCache
from app.errors import DependencyUnavailable
from app.tokens.metrics import TokenMetrics
from app.tokens.models import RevocationState, TokenRef, client_subject
from app.tokens.ports import RevocationCache, RevocationStore

SESSION_PREFIX = "sid:"
MAX_TOKEN_LIFETIME = 86_400  # the longest access-token TTL the settings allow
RETRY_SECONDS = 1.0
WARN_EVERY_SECONDS = 10.0
RECENT_ENTRIES = 100_000

_RefKey = tuple[str, str | None, str, str | None]


class MemoryRevocationCache:
    """The in-process fast path (no Redis): complete once filled."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._state = RevocationState()
        self._complete = False
        self._clock = clock

    async def lookup(
        self, *, jtis: Collection[str], sessions: Collection[str], subjects: Collection[str]
    ) -> RevocationState | None:
        if not self._complete:
            return None
        now, s = self._clock(), self._state
        return RevocationState(
            jtis={j: s.jtis[j] for j in jtis if s.jtis.get(j, 0) > now},
            sessions={x: s.sessions[x] for x in sessions if s.sessions.get(x, 0) > now},
            valid_after={u: s.valid_after[u] for u in subjects if u in s.valid_after},
        )

    async def remember(self, state: RevocationState) -> None:
        self._state.merge(state)

    async def fill(self, state: RevocationState, *, complete_for: float) -> None:
        # Merge, never replace: a revocation remembered while the copy was being read from
        # the database must not be dropped by it. Expired entries go.
        now = self._clock()
        merged = RevocationState(
            jtis={j: e for j, e in self._state.jtis.items() if e > now},
            sessions={s: e for s, e in self._state.sessions.items() if e > now},
            valid_after={
                u: ms
                for u, ms in self._state.valid_after.items()
                if ms / 1000 + MAX_TOKEN_LIFETIME > now
            },
        )
        merged.merge(state)
        self._state = merged
        self._complete = True

    async def forget_completeness(self) -> None:
        self._complete = False


class _Batch:
    """Lookups waiting for the same fallback query."""

    def __init__(self) -> None:
        self.jtis: set[str] = set()
        self.sessions: set[str] = set()
        self.subjects: set[str] = set()
        self.done: asyncio.Future[RevocationState] = asyncio.get_running_loop().create_future()

    @property
    def size(self) -> int:
        return len(self.jtis) + len(self.sessions) + len(self.subjects)


class CoalescedLookups:
    """Database lookups run one query at a time; lookups arriving meanwhile share the next.

    Each caller gets a copy of the state of the whole batch (a superset of what it asked for,
    which `Revocations.reason` reads by key, so extra entries change nothing).
    """

    def __init__(self, store: RevocationStore, *, max_ids: int = 5_000) -> None:
        self.store = store
        self.max_ids = max_ids
        self.queries = 0  # fallback queries run (tests and metrics read it)
        self._queue: deque[_Batch] = deque()
        self._runner: asyncio.Task[None] | None = None

    async def lookup(
        self, *, jtis: Collection[str], sessions: Collection[str], subjects: Collection[str]
    ) -> RevocationState:
        if not self._queue or self._queue[-1].size >= self.max_ids:
            self._queue.append(_Batch())
        batch = self._queue[-1]
        batch.jtis.update(jtis)
        batch.sessions.update(sessions)
        batch.subjects.update(subjects)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        found = await asyncio.shield(batch.done)
        copy = RevocationState()
        copy.merge(found)
        return copy

    async def _run(self) -> None:
        while self._queue:
            batch = self._queue.popleft()
            try:
                self.queries += 1
                state = await self.store.lookup(
                    jtis=batch.jtis, sessions=batch.sessions, subjects=batch.subjects
                )
            except Exception as exc:
                batch.done.set_exception(exc)
                batch.done.exception()  # retrieved here: callers re-raise their own
            else:
                batch.done.set_result(state)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        for batch in self._queue:
            batch.done.cancel()
        self._queue.clear()


class Revocations:
    def __init__(
        self,
        store: RevocationStore,
        cache: RevocationCache,
        *,
        complete_for: float,
        metrics: TokenMetrics | None = None,
        clock: Callable[[], float] = time.time,
        recent_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.cache = cache
        self.complete_for = complete_for
        self.metrics = metrics
        self.clock = clock
        self._pending = RevocationState()  # written to the DB, not yet to the cache
        self._tasks: set[asyncio.Task[None]] = set()
        self._warming: asyncio.Task[None] | None = None
        self._retrying: asyncio.Task[None] | None = None
        self._warned_at = 0.0
        self._recent: LocalCache[_RefKey, RevocationState] | None = (
            LocalCache(max_entries=RECENT_ENTRIES, ttl=recent_seconds)
            if recent_seconds > 0
            else None
        )
        self._counters: dict[str, Any] = {}
        self._generation = 0  # bumped by every local write: lookups older than it are stale
        self._fallback: CoalescedLookups | None = None

    @property
    def fallback(self) -> CoalescedLookups:
        """Coalesced database lookups (made on first use: it needs the running loop)."""
        if self._fallback is None:
            self._fallback = CoalescedLookups(self.store)
        return self._fallback

    @property
    def has_pending(self) -> bool:
        """Entries recorded in the database that the cache has not accepted yet."""
        return bool(self._pending)

    # -- reading -----------------------------------------------------------------------
    def answers_at_once(self, ref: TokenRef) -> bool:
        """Would `check([ref])` answer without I/O (in-process cache, or the recent window)?"""
        if isinstance(self.cache, MemoryRevocationCache) and not self._pending:
            return True
        return self._recent is not None and self._recent.get(_key(ref)) is not None

    async def check(self, refs: Sequence[TokenRef]) -> RevocationState:
        """What is known about these tokens: from the recent window, or one round trip."""
        if not refs:
            return RevocationState()
        recent = self._recent
        if recent is None:
            return await self._check(refs)
        if len(refs) == 1 and not self._pending:
            known = recent.get(_key(refs[0]))
            if known is not None:  # the common case, without copying (callers only read it)
                self._count("recent")
                return known
        state = RevocationState()
        misses: list[TokenRef] = []
        for ref in refs:
            known = recent.get(_key(ref))
            if known is None:
                misses.append(ref)
            else:
                state.merge(known)
        if not misses:
            self._count("recent")
            state.merge(self._pending)
            return state
        generation = self._generation
        found = await self._check(misses)
        if generation == self._generation:
            for ref in misses:
                recent.put(_key(ref), _about(ref, found))
        state.merge(found)
        return state

    async def _check(self, refs: Sequence[TokenRef]) -> RevocationState:
        jtis = {r.jti for r in refs}
        sessions = {r.session for r in refs if r.session}
        subjects = {r.subject for r in refs} | {client_subject(r.client_id) for r in refs}
        state: RevocationState | None = None
        try:
            state = await self.cache.lookup(jtis=jtis, sessions=sessions, subjects=subjects)
        except Exception as exc:
            self._warn_cache_down(exc)
        if state is None:
            state = await self._from_store(jtis, sessions, subjects)
            self._count("db")
            self.schedule_warm()
        else:
            self._count("cache")
        state.merge(self._pending)
        return state

    async def _from_store(
        self, jtis: set[str], sessions: set[str], subjects: set[str]
    ) -> RevocationState:
        try:
            return await self.fallback.lookup(jtis=jtis, sessions=sessions, subjects=subjects)
        except Exception as exc:
            logger.error("auth.revocation.store_unavailable", error=type(exc).__name__)
            raise DependencyUnavailable(
                "Revocation state is unavailable", details={"dependency": "database"}
            ) from None

    def _warn_cache_down(self, exc: Exception) -> None:
        """One warning per `WARN_EVERY_SECONDS` while the cache is down, not one per request."""
        now = self.clock()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning("auth.revocation.cache_unavailable", error=type(exc).__name__)

    @staticmethod
    def reason(ref: TokenRef, state: RevocationState) -> str | None:
        """Why this token is dead, or None when it is not."""
        if ref.jti in state.jtis:
            return "revoked"
        if ref.session is not None and ref.session in state.sessions:
            return "session_revoked"
        if ref.issued_ms < state.valid_after.get(ref.subject, 0):
            return "stale"
        client = client_subject(ref.client_id) if ref.client_id else None
        if client is not None and ref.issued_ms < state.valid_after.get(client, 0):
            return "client_cut_off"
        return None

    # -- writing -----------------------------------------------------------------------
    async def revoke(
        self,
        *,
        subject: str | None,
        reason: str,
        jtis: Sequence[tuple[str, float]] = (),
        sessions: Sequence[str] = (),
    ) -> None:
        """Revoke access tokens (`jti`, exp) and sessions (refresh families): DB, then cache."""
        now = self.clock()
        session_until = now + MAX_TOKEN_LIFETIME
        ids = [*jtis, *((SESSION_PREFIX + s, session_until) for s in sessions)]
        if not ids:
            return
        at = datetime.fromtimestamp(now, UTC)
        try:
            await self.store.revoke(ids=ids, subject=subject, reason=reason, at=at)
        except Exception as exc:
            logger.error("auth.revocation.store_unavailable", error=type(exc).__name__)
            raise DependencyUnavailable(
                "Revocation could not be recorded", details={"dependency": "database"}
            ) from None
        if self.metrics is not None:
            self.metrics.revocations.labels(reason=reason).inc(len(ids))
        await self.remember(
            RevocationState(jtis=dict(jtis), sessions=dict.fromkeys(sessions, session_until))
        )

    async def remember(self, state: RevocationState) -> None:
        """Put entries already recorded in the DB into the cache (retrying if it fails)."""
        self.forget_recent()
        try:
            await self.cache.remember(state)
        except Exception as exc:
            logger.warning("auth.revocation.cache_write_failed", error=type(exc).__name__)
            self._pending.merge(state)
            with contextlib.suppress(Exception):
                await self.cache.forget_completeness()
            self._start_retry()

    def _start_retry(self) -> None:
        if self._retrying is None or self._retrying.done():
            self._retrying = self._spawn(self._retry_pending())

    async def _retry_pending(self) -> None:
        while self._pending:
            await asyncio.sleep(RETRY_SECONDS)
            pending = self._pending
            try:
                await self.cache.forget_completeness()
                await self.cache.remember(pending)
            except Exception as exc:
                logger.debug("auth.revocation.cache_retry_failed", error=type(exc).__name__)
                continue
            self._pending = RevocationState()
            logger.info("auth.revocation.cache_caught_up")

    def forget_recent(self) -> None:
        """Drop what was learned in the recent window (a revocation happened somewhere)."""
        self._generation += 1
        if self._recent is not None:
            self._recent.clear()

    # -- filling the cache -------------------------------------------------------------
    async def warm(self) -> None:
        """Copy every live entry from the database into the cache and mark it complete."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        state = await self.store.active(now=now, horizon_seconds=MAX_TOKEN_LIFETIME)
        state.merge(self._pending)
        await self.cache.fill(state, complete_for=self.complete_for)

    def schedule_warm(self) -> None:
        if self._warming is None or self._warming.done():
            self._warming = self._spawn(self._warm_quietly())

    async def _warm_quietly(self) -> None:
        try:
            await self.warm()
        except Exception as exc:
            logger.warning("auth.revocation.warm_failed", error=type(exc).__name__)

    async def purge(self) -> int:
        """Forget database entries that can no longer affect any token."""
        before = datetime.fromtimestamp(self.clock() - 3600, UTC)
        return await self.store.purge(before=before)

    # -- housekeeping --------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        if self._fallback is not None:
            await self._fallback.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _count(self, path: str) -> None:
        if self.metrics is not None:
            counter = self._counters.get(path)
            if counter is None:
                counter = self._counters[path] = self.metrics.revocation_lookups.labels(path=path)
            counter.inc()


def _key(ref: TokenRef) -> _RefKey:
    return (ref.jti, ref.session, ref.subject, ref.client_id)


def _about(ref: TokenRef, state: RevocationState) -> RevocationState:
    """The part of `state` that concerns `ref` (what `Revocations.reason` reads)."""
    out = RevocationState()
    if ref.jti in state.jtis:
        out.jtis[ref.jti] = state.jtis[ref.jti]
    if ref.session is not None and ref.session in state.sessions:
        out.sessions[ref.session] = state.sessions[ref.session]
    for subject in (ref.subject, client_subject(ref.client_id) if ref.client_id else None):
        if subject is not None and subject in state.valid_after:
            out.valid_after[subject] = state.valid_after[subject]
    return out
