"""`PolicyEngine`: the live policy, reloaded atomically; decisions are asked of its snapshot.

Reads never lock: a decision takes the current snapshot (one attribute read) and works on it.
A reload builds the next snapshot in a worker thread and swaps it in with one assignment,
so concurrent checks see the old policy or the new one, never a half-loaded mix.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from loguru import logger

from app.errors import AuthzError, DependencyUnavailable
from app.observability.metrics import Metrics
from app.policy.entities import EMPTY, EntitySet
from app.policy.fingerprint import policy_fingerprint
from app.policy.model import ModelInfo
from app.policy.rules import Rule
from app.policy.snapshot import PolicySnapshot
from app.policy.sources import PolicyLoader
from app.policy.status import PolicyStatus

ChangeListener = Callable[[PolicySnapshot, str], Awaitable[None]]


class RevisionStore(Protocol):
    """The global policy revision, shared by every instance (the database holds it), with
    the fingerprint of the content it labels (see `app.store.revisions`)."""

    async def current(self) -> int: ...

    async def bump(self) -> int: ...

    async def label(self, seen: int, fingerprint: str) -> int | None: ...

    async def remember(self, revision: int, fingerprint: str) -> None: ...


# A load reads the revision, then the content; if the revision moved meanwhile (a change
# committed elsewhere) it reads again, this many times, before it takes a new revision outright.
_LABEL_ATTEMPTS = 3


class EntitySource(Protocol):
    """The entity store, with its own revision (the database holds both)."""

    async def revision(self) -> int: ...

    async def load(self) -> EntitySet: ...


class PolicyEngine:
    def __init__(
        self,
        loader: PolicyLoader,
        revisions: RevisionStore,
        *,
        metrics: Metrics | None = None,
        entities: EntitySource | None = None,
    ) -> None:
        self.loader = loader
        self.revisions = revisions
        self.metrics = metrics
        self.entity_source = entities
        self._snapshot: PolicySnapshot | None = None
        self._fingerprint: str | None = None  # of the content the live snapshot was built from
        self._reload_lock = asyncio.Lock()
        self._listeners: list[ChangeListener] = []
        self.status = PolicyStatus(f"{loader.description} ({loader.policy_dir})")

    # -- state --------------------------------------------------------------------------
    @property
    def snapshot(self) -> PolicySnapshot:
        snap = self._snapshot
        if snap is None:
            raise DependencyUnavailable("policy not loaded yet")
        return snap

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    @property
    def revision(self) -> int:
        return self.snapshot.revision

    def on_change(self, listener: ChangeListener) -> None:
        """Call `listener(new_snapshot, trigger)` after every swap (cache invalidation,
        publishing the change to other instances, warming). `trigger` says what caused the
        load: "startup", "file", "api", "cli", "reload", "remote", "poll"."""
        self._listeners.append(listener)

    # -- loading ------------------------------------------------------------------------
    async def load(
        self, *, trigger: str, bump: bool = True, catching_up_to: int | None = None
    ) -> PolicySnapshot:
        """Read every source, build a snapshot and make it live.

        `bump=True` (start-up, file edits, a reload request) labels the content: the same
        content as the revision in the database keeps that revision (starting or adding an
        instance or a worker changes nothing), other content takes the next one.
        `bump=False` adopts the current revision (a change committed and announced elsewhere).
        Content identical to the live snapshot's, under the same revision, is not rebuilt.
        `catching_up_to`: the revision a catch-up saw in the database; if a load that finished
        while this one waited for the lock already serves it, there is nothing to adopt (the
        files may have changed since, and adopting would label new content with an old
        revision).
        On any error the previous snapshot keeps serving and the error propagates.
        """
        async with self._reload_lock:
            current = self._snapshot
            if (
                catching_up_to is not None
                and current is not None
                and current.revision >= catching_up_to
            ):
                return current
            started = time.perf_counter()
            try:
                # The revision is read before the rules, so the content is never older than
                # its label; a change committed meanwhile carries a higher one.
                revision, model, rules, fingerprint = await self._read_labelled(bump)
                entities = await self._entities()
                current = self._snapshot
                if (
                    current is not None
                    and current.revision == revision
                    and fingerprint == self._fingerprint
                    and entities.revision == current.entities.revision
                    and entities.digest == current.entities.digest
                ):
                    self._record(trigger, "unchanged")
                    self.status.confirmed()
                    logger.info(
                        "policy.unchanged",
                        trigger=trigger,
                        revision=revision,
                        seconds=round(time.perf_counter() - started, 4),
                    )
                    return current
                snapshot = await asyncio.to_thread(
                    PolicySnapshot.build, model, rules, revision=revision, entities=entities
                )
            except AuthzError as exc:
                self._record(trigger, "rejected")
                self.status.rejected_error(trigger, exc.code, exc.message, exc.details)
                logger.warning(
                    "policy.load.rejected", trigger=trigger, error=exc.message, details=exc.details
                )
                raise
            except Exception:
                self._record(trigger, "error")
                logger.exception("policy.load.failed", trigger=trigger)
                raise
            self._snapshot = snapshot
            self._fingerprint = fingerprint
            self.status.loaded(
                revision=snapshot.revision, trigger=trigger, digest=snapshot.content_digest
            )
            elapsed = time.perf_counter() - started
            self._record(trigger, "ok", snapshot=snapshot, seconds=elapsed)
            logger.info(
                "policy.loaded",
                trigger=trigger,
                revision=snapshot.revision,
                rules=snapshot.rule_counts,
                sources=self.loader.description,
                seconds=round(elapsed, 4),
            )
        for listener in list(self._listeners):
            try:
                await listener(snapshot, trigger)
            except Exception:
                logger.exception("policy.listener.failed", listener=repr(listener))
        return snapshot

    async def _read_labelled(self, bump: bool) -> tuple[int, ModelInfo, list[Rule], str]:
        """The content of every source, its fingerprint and the revision that labels it."""
        if bump:
            for _ in range(_LABEL_ATTEMPTS):
                seen = await self.revisions.current()
                model, rules = await asyncio.to_thread(self.loader.read)
                fingerprint = await asyncio.to_thread(policy_fingerprint, model, rules)
                revision = await self.revisions.label(seen, fingerprint)
                if revision is not None:
                    return revision, model, rules, fingerprint
            # Writers keep committing: take a new revision first, then read (never stale).
            revision = await self.revisions.bump()
            model, rules = await asyncio.to_thread(self.loader.read)
            fingerprint = await asyncio.to_thread(policy_fingerprint, model, rules)
            await self.revisions.remember(revision, fingerprint)
            return revision, model, rules, fingerprint
        revision = await self.revisions.current()
        model, rules = await asyncio.to_thread(self.loader.read)
        fingerprint = await asyncio.to_thread(policy_fingerprint, model, rules)
        # So that the next start with this content adopts this revision (best effort).
        try:
            await self.revisions.remember(revision, fingerprint)
        except Exception as exc:
            logger.warning("policy.fingerprint.not_recorded", error=type(exc).__name__)
        return revision, model, rules, fingerprint

    async def _entities(self) -> EntitySet:
        if self.entity_source is None:
            return self._snapshot.entities if self._snapshot is not None else EMPTY
        return await self.entity_source.load()

    @property
    def entity_revision(self) -> int:
        return self.snapshot.entities.revision

    async def refresh_entities(self, *, trigger: str) -> PolicySnapshot | None:
        """Adopt the entity store's current content without re-reading the policy.

        The policy revision stays; the snapshot is rebuilt over the same model and rules
        with the new entities (parents become role links) and swapped in like a reload.
        Returns None when the served entities are already current.
        """
        if self.entity_source is None:
            return None
        async with self._reload_lock:
            current = self.snapshot
            entities = await self.entity_source.load()
            if entities.revision == current.entities.revision and entities.digest == (
                current.entities.digest
            ):
                return None
            started = time.perf_counter()
            snapshot = await asyncio.to_thread(current.with_entities, entities)
            self._snapshot = snapshot
            logger.info(
                "entities.loaded",
                trigger=trigger,
                entity_revision=entities.revision,
                entities=len(entities),
                policy_revision=snapshot.revision,
                seconds=round(time.perf_counter() - started, 4),
            )
        for listener in list(self._listeners):
            try:
                await listener(snapshot, trigger)
            except Exception:
                logger.exception("policy.listener.failed", listener=repr(listener))
        return snapshot

    def _record(
        self,
        trigger: str,
        result: str,
        *,
        snapshot: PolicySnapshot | None = None,
        seconds: float | None = None,
    ) -> None:
        m = self.metrics
        if m is None:
            return
        m.policy_reloads.labels(trigger=trigger, result=result).inc()
        if snapshot is not None:
            m.policy_revision.set(snapshot.revision)
            for ptype, count in snapshot.rule_counts.items():
                m.policy_rules.labels(ptype=ptype).set(count)
        if seconds is not None:
            m.policy_load_seconds.observe(seconds)
