"""`AuditWriter`: audit events that accompany no database change of their own (tokens issued,
refreshed, revoked or cut off, failed logins, alerts), written in batches off the request path.

`emit` only appends to a bounded queue and returns; a background task writes the queue in one
transaction per batch. When the queue is full the event is dropped, counted in
`oms_auth_audit_dropped_total` and logged: a flood of failed logins must not stall logins.
Changes to roles, rules, users, clients and keys are not written here: they are audited in
the transaction of the change itself (`app.audit.ports.AuditRecorder`). The table behind
the trail is `app.store.audit_log`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

from loguru import logger
from prometheus_client import CollectorRegistry, Counter

from app.audit.note import Source
from app.audit.ports import AuditRecord, AuditTrail
from app.observability.logging import request_id_var


class AuditWriter:
    def __init__(
        self,
        trail: AuditTrail,
        *,
        capacity: int = 10_000,
        batch: int = 500,
        interval: float = 0.2,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.trail = trail
        self.capacity = capacity
        self.batch = batch
        self.interval = interval
        self._queue: deque[AuditRecord] = deque()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self.written = Counter(
            "oms_auth_audit_events_total",
            "Audit events written off the request path (tokens, failed logins, alerts)",
            ["action"],
            registry=registry,
        )
        self.dropped = Counter(
            "oms_auth_audit_dropped_total",
            "Audit events dropped because the write queue was full or the database failed",
            registry=registry,
        )

    def emit(
        self,
        action: str,
        *,
        actor: str,
        target: str | None = None,
        details: dict[str, Any] | None = None,
        source: Source = "api",
    ) -> None:
        if len(self._queue) >= self.capacity:
            self.dropped.inc()
            logger.warning("audit.dropped", action=action, reason="queue_full")
            return
        self._queue.append(
            AuditRecord(action, actor, source, request_id_var.get(), target, details)
        )
        if self._wake is not None and len(self._queue) >= self.batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        while self._queue:
            events = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
            try:
                await self.trail.append(events)
            except Exception as exc:
                self.dropped.inc(len(events))
                logger.error("audit.write_failed", events=len(events), error=str(exc))
                return
            for e in events:
                self.written.labels(action=e.action).inc()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), timeout=5.0)
