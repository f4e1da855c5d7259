"""Refresh tokens, stored as SHA-256 hashes, grouped in families (one per login).

Rotation is one conditional UPDATE: only the first request that presents a token can mark it
rotated, so two concurrent refreshes with the same token can never both succeed; the loser
is treated as reuse.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from app.audit.note import SecurityAlert
from app.store.audit_log import AuditLog, AuditNote
from app.store.database import Database
from app.store.models import RefreshToken
from app.tokens.models import RefreshRecord


def _record(row: RefreshToken) -> RefreshRecord:
    return RefreshRecord(
        token_hash=row.token_hash,
        family_id=row.family_id,
        user_id=row.user_id,
        client_id=row.client_id,
        scope=row.scope,
        token_version=row.token_version,
        fingerprint_hash=row.fingerprint_hash,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        rotated_at=row.rotated_at,
        revoked_at=row.revoked_at,
        replaced_by=row.replaced_by,
        successor_sealed=row.successor_sealed,
    )


def _row(record: RefreshRecord) -> RefreshToken:
    return RefreshToken(
        token_hash=record.token_hash,
        family_id=record.family_id,
        user_id=record.user_id,
        client_id=record.client_id,
        scope=record.scope,
        token_version=record.token_version,
        fingerprint_hash=record.fingerprint_hash,
        issued_at=record.issued_at,
        expires_at=record.expires_at,
    )


class RefreshTokenRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, record: RefreshRecord) -> None:
        async with self.db.transaction() as s:
            s.add(_row(record))

    async def find(self, token_hash: str) -> RefreshRecord | None:
        async with self.db.sessions() as s:
            row = await s.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
        return _record(row) if row is not None else None

    async def rotate(
        self, *, old_hash: str, new: RefreshRecord, at: datetime, sealed: bytes | None = None
    ) -> bool:
        async with self.db.transaction() as s:
            result = await s.execute(
                update(RefreshToken)
                .where(RefreshToken.token_hash == old_hash)
                .where(RefreshToken.rotated_at.is_(None))
                .where(RefreshToken.revoked_at.is_(None))
                .values(rotated_at=at, replaced_by=new.token_hash, successor_sealed=sealed)
            )
            if getattr(result, "rowcount", 0) != 1:
                return False
            s.add(_row(new))
        return True

    async def revoke_family(
        self, *, family_id: str, at: datetime, alert: SecurityAlert | None = None
    ) -> int:
        async with self.db.transaction() as s:
            result = await s.execute(
                update(RefreshToken)
                .where(RefreshToken.family_id == family_id)
                .where(RefreshToken.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            if alert is not None:
                await AuditLog().write(
                    s,
                    AuditNote(actor=alert.actor, source="api", request_id=alert.request_id),
                    action=f"alert.{alert.kind}",
                    target=f"session:{family_id}",
                    details=dict(alert.details),
                )
        return int(getattr(result, "rowcount", 0))

    async def revoke_user(self, *, user_id: str, at: datetime) -> list[str]:
        async with self.db.transaction() as s:
            families = (
                await s.scalars(
                    select(RefreshToken.family_id)
                    .where(RefreshToken.user_id == user_id)
                    .where(RefreshToken.revoked_at.is_(None))
                    .where(RefreshToken.expires_at > at)
                    .distinct()
                )
            ).all()
            await s.execute(
                update(RefreshToken)
                .where(RefreshToken.user_id == user_id)
                .where(RefreshToken.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        return list(families)

    async def purge(self, *, before: datetime) -> int:
        """Delete tokens that expired before `before` (they can never be presented again)."""
        async with self.db.transaction() as s:
            result = await s.execute(delete(RefreshToken).where(RefreshToken.expires_at < before))
        return int(getattr(result, "rowcount", 0))
