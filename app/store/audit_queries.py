"""Reading the audit trail: each query in its own database session, so callers (the HTTP
routes) never open one themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.store.audit_log import AuditEntry, AuditLog, AuditPage, AuditQuery
from app.store.database import Database


@dataclass(frozen=True)
class AuditQueries:
    db: Database
    log: AuditLog

    async def page(self, query: AuditQuery) -> AuditPage:
        """Newest first; page with `limit` + `offset`, or follow `next_cursor`."""
        async with self.db.sessions() as session:
            return await self.log.query(session, query)

    async def export(self, query: AuditQuery) -> AsyncIterator[AuditEntry]:
        """Every matching event, oldest first; the session lives as long as the iteration."""
        async with self.db.sessions() as session:
            async for entry in self.log.export(session, query):
                yield entry
