"""`AuditLog`: write audit events inside the caller's transaction, and read them back.

An event is written in the same transaction as the change it records, so a change is never
committed without its audit row and an audit row never describes a change that was rolled
back. The table is append-only (database triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.note import AuditNote, Source
from app.audit.ports import AuditRecord
from app.store.database import Database
from app.store.models import AuditEvent, AuditPurge, utcnow

__all__ = [
    "AuditEntry",
    "AuditLog",
    "AuditNote",
    "AuditPage",
    "AuditQuery",
    "AuditTrailStore",
    "Source",
]

MAX_PAGE = 500


@dataclass(frozen=True)
class AuditEntry:
    id: int
    occurred_at: datetime
    actor: str
    action: str
    source: str
    request_id: str | None
    target: str | None
    before: Any
    after: Any
    details: Any

    @classmethod
    def of(cls, row: AuditEvent) -> AuditEntry:
        return cls(
            row.id,
            row.occurred_at,
            row.actor,
            row.action,
            row.source,
            row.request_id,
            row.target,
            row.before,
            row.after,
            row.details,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "action": self.action,
            "source": self.source,
            "request_id": self.request_id,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "details": self.details,
        }


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in "*" ("policy.*")
    source: str | None = None
    target: str | None = None
    subject: str | None = None  # "alice" matches targets "alice", "user:alice", "client:alice"
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # cursor: events older than this id
    limit: int = 50
    offset: int = 0

    def conditions(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.actor is not None:
            out.append(AuditEvent.actor == self.actor)
        if self.action is not None:
            if self.action.endswith("*"):
                out.append(AuditEvent.action.startswith(self.action[:-1], autoescape=True))
            else:
                out.append(AuditEvent.action == self.action)
        if self.source is not None:
            out.append(AuditEvent.source == self.source)
        if self.target is not None:
            out.append(AuditEvent.target == self.target)
        if self.subject is not None:
            names = {self.subject, f"user:{self.subject}", f"client:{self.subject}"}
            out.append(AuditEvent.target.in_(sorted(names)))
        if self.since is not None:
            out.append(AuditEvent.occurred_at >= self.since)
        if self.until is not None:
            out.append(AuditEvent.occurred_at < self.until)
        return out


@dataclass(frozen=True)
class AuditPage:
    items: Sequence[AuditEntry]
    total: int  # events matching the filters (the cursor aside)
    next_cursor: int | None


class AuditLog:
    async def record(
        self,
        session: AsyncSession,
        *,
        actor: str,
        action: str,
        source: Source,
        request_id: str | None = None,
        target: str | None = None,
        before: Any = None,
        after: Any = None,
        details: Any = None,
    ) -> int:
        """Add one event to the caller's transaction; returns its id."""
        row = AuditEvent(
            occurred_at=utcnow(),
            actor=actor[:255],
            action=action[:64],
            source=source,
            request_id=request_id[:128] if request_id else None,
            target=target,
            before=before,
            after=after,
            details=details,
        )
        session.add(row)
        await session.flush()
        return row.id

    async def write(
        self,
        session: AsyncSession,
        note: AuditNote,
        *,
        action: str,
        target: str | None = None,
        before: Any = None,
        after: Any = None,
        details: Any = None,
    ) -> int:
        """`record` for a change whose author arrived as an `AuditNote`."""
        return await self.record(
            session,
            actor=note.actor,
            action=action,
            source=note.source,
            request_id=note.request_id,
            target=target,
            before=before,
            after=after,
            details=details,
        )

    async def query(self, session: AsyncSession, query: AuditQuery) -> AuditPage:
        """Newest first; page with `limit` + `offset`, or follow `next_cursor`."""
        conditions = query.conditions()
        total = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(*conditions)
        )
        page = select(AuditEvent).where(*conditions)
        if query.before_id is not None:
            page = page.where(AuditEvent.id < query.before_id)
        limit = max(1, min(query.limit, MAX_PAGE))
        page = page.order_by(AuditEvent.id.desc()).offset(query.offset).limit(limit + 1)
        rows = list((await session.scalars(page)).all())
        more = len(rows) > limit
        items = [AuditEntry.of(r) for r in rows[:limit]]
        return AuditPage(items, int(total or 0), items[-1].id if more and items else None)

    async def export(
        self, session: AsyncSession, query: AuditQuery, *, chunk: int = 1000
    ) -> AsyncIterator[AuditEntry]:
        """Every matching event, oldest first, read in chunks (for JSON-lines export)."""
        conditions = query.conditions()
        after = 0
        while True:
            rows = list(
                (
                    await session.scalars(
                        select(AuditEvent)
                        .where(*conditions, AuditEvent.id > after)
                        .order_by(AuditEvent.id)
                        .limit(chunk)
                    )
                ).all()
            )
            for row in rows:
                yield AuditEntry.of(row)
            if len(rows) < chunk:
                return
            after = rows[-1].id

    async def purge(
        self, db: Database, *, older_than_days: int, actor: str = "system:retention"
    ) -> int:
        """Delete events older than the retention period; the purge itself is audited."""
        now = utcnow()
        cutoff = now - timedelta(days=older_than_days)
        async with db.transaction() as session:
            marker = AuditPurge(started_at=now, cutoff=cutoff, actor=actor[:255], active=True)
            session.add(marker)
            await session.flush()
            result = await session.execute(
                delete(AuditEvent).where(AuditEvent.occurred_at < cutoff)
            )
            removed = int(getattr(result, "rowcount", 0) or 0)
            await session.execute(
                update(AuditPurge)
                .where(AuditPurge.id == marker.id)
                .values(active=False, removed=removed)
            )
            if removed:
                await self.record(
                    session,
                    actor=actor,
                    action="audit.purged",
                    source="system",
                    target="audit",
                    details={"cutoff": cutoff.isoformat(), "removed": removed},
                )
        return removed


class AuditTrailStore:
    """`app.audit.ports.AuditTrail` on the audit table: one transaction per batch."""

    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit or AuditLog()

    async def append(self, records: Sequence[AuditRecord]) -> None:
        async with self.db.transaction() as session:
            for r in records:
                await self.audit.record(
                    session,
                    actor=r.actor,
                    action=r.action,
                    source=r.source,
                    request_id=r.request_id,
                    target=r.target,
                    details=r.details,
                )
