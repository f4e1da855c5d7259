"""The global policy revision, one row in `policy_state`, bumped atomically."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.database import Database
from app.store.models import PolicyState, utcnow


class DatabaseRevisionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def current(self) -> int:
        async with self.db.sessions() as session:
            value = await session.scalar(select(PolicyState.revision).where(PolicyState.id == 1))
        return int(value or 0)

    async def bump(self) -> int:
        async with self.db.transaction() as session:
            return await bump_revision(session)


async def bump_revision(session: AsyncSession) -> int:
    """Increment inside the caller's transaction (so a rule change and its revision commit
    together); the row lock serialises concurrent writers."""
    result = await session.execute(
        update(PolicyState)
        .where(PolicyState.id == 1)
        .values(revision=PolicyState.revision + 1, updated_at=utcnow())
        .returning(PolicyState.revision)
    )
    return int(result.scalar_one())
