"""Idempotency keys: the first answer to a write, kept for `ttl` and replayed to retries.

A key is scoped to who sent it (two callers may use the same key). `reserve` inserts the
key as "in progress" before the write runs (the primary key makes two concurrent requests
with one key race on that insert, and only one wins); `complete` stores the answer; `release`
forgets a reservation whose write failed without effect, so a retry runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app.store.database import Database
from app.store.models import IdempotencyKey

# An "in progress" reservation older than this is taken over: its process died mid-write.
STALE_RESERVATION_SECONDS = 120


@dataclass(frozen=True)
class Reservation:
    """`new`: this request runs the write. Otherwise the stored state of the key."""

    new: bool
    request_hash: str = ""
    status: int | None = None  # None: the first request is still running
    response: bytes | None = None


class IdempotencyStore:
    def __init__(self, db: Database, *, ttl_seconds: int) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_seconds)

    async def reserve(self, *, scope: str, key: str, request_hash: str) -> Reservation:
        now = datetime.now(UTC)
        try:
            async with self.db.transaction() as s:
                row = await s.get(IdempotencyKey, (scope, key))
                if row is not None and not _expired(row, now):
                    return Reservation(False, row.request_hash, row.status, row.response)
                if row is not None:
                    await s.delete(row)
                    await s.flush()
                s.add(
                    IdempotencyKey(
                        scope=scope,
                        key=key,
                        request_hash=request_hash,
                        created_at=now,
                        expires_at=now + self.ttl,
                    )
                )
        except IntegrityError:  # another request with this key reserved it first
            return await self._existing(scope, key)
        return Reservation(True)

    async def _existing(self, scope: str, key: str) -> Reservation:
        async with self.db.sessions() as s:
            row = await s.get(IdempotencyKey, (scope, key))
        if row is None:
            return Reservation(False)
        return Reservation(False, row.request_hash, row.status, row.response)

    async def complete(self, *, scope: str, key: str, status: int, response: bytes) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
                .values(status=status, response=response)
            )

    async def release(self, *, scope: str, key: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.scope == scope,
                    IdempotencyKey.key == key,
                    IdempotencyKey.status.is_(None),
                )
            )

    async def purge(self) -> int:
        async with self.db.transaction() as s:
            result = await s.execute(
                delete(IdempotencyKey).where(IdempotencyKey.expires_at < datetime.now(UTC))
            )
        return int(getattr(result, "rowcount", 0))

    async def keys(self, scope: str) -> list[str]:
        async with self.db.sessions() as s:
            return list(
                await s.scalars(select(IdempotencyKey.key).where(IdempotencyKey.scope == scope))
            )


def _expired(row: IdempotencyKey, now: datetime) -> bool:
    if row.expires_at <= now:
        return True
    stale = now - timedelta(seconds=STALE_RESERVATION_SECONDS)
    return row.status is None and row.created_at < stale
