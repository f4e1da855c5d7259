"""Security alerts that answer no change of their own: one audit event in its own transaction."""

from __future__ import annotations

from app.audit.note import AuditNote, SecurityAlert
from app.store.audit_log import AuditLog
from app.store.database import Database


class AlertRecorder:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, alert: SecurityAlert, target: str) -> None:
        async with self.db.transaction() as s:
            await AuditLog().write(
                s,
                AuditNote(actor=alert.actor, source="api", request_id=alert.request_id),
                action=f"alert.{alert.kind}",
                target=target,
                details=dict(alert.details),
            )


class AuditWriter:
    """`app.security.login_guard.AuditWriter` over the audit table, for one author."""

    def __init__(self, db: Database, note: AuditNote) -> None:
        self.db = db
        self.note = note

    async def __call__(self, action: str, target: str, details: dict[str, object]) -> None:
        async with self.db.transaction() as s:
            await AuditLog().write(s, self.note, action=action, target=target, details=details)
