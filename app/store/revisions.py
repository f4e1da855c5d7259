"""The global policy revision, one row in `policy_state`, bumped atomically.

The row also keeps the fingerprint of the content its revision labels, so a load of the same
content (an instance or worker starting, a file save that changed nothing) adopts the revision
instead of taking a new one. Every write is a compare-and-set on the revision the caller read
before it read the content, so a label never ends up on content older than it.
"""

from __future__ import annotations

from sqlalchemy import or_, select, update
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

    async def label(self, seen: int, fingerprint: str) -> int | None:
        """The revision for content read after the revision was `seen`.

        The same content as the row remembers: `seen` itself. Other content: `seen + 1`, with
        its fingerprint. None when the revision moved since `seen` (read again and retry).
        """
        async with self.db.transaction() as session:
            row = (
                await session.execute(
                    select(PolicyState.revision, PolicyState.content_hash).where(
                        PolicyState.id == 1
                    )
                )
            ).one()
            if int(row.revision) != seen:
                return None
            if row.content_hash == fingerprint:
                return seen
            result = await session.execute(
                update(PolicyState)
                .where(PolicyState.id == 1, PolicyState.revision == seen)
                .values(revision=seen + 1, content_hash=fingerprint, updated_at=utcnow())
                .returning(PolicyState.revision)
            )
            value = result.scalar_one_or_none()
        return None if value is None else int(value)

    async def remember(self, revision: int, fingerprint: str) -> None:
        """Record `fingerprint` for `revision` (a change committed elsewhere, now loaded),
        unless the revision has moved on meanwhile."""
        async with self.db.transaction() as session:
            await session.execute(
                update(PolicyState)
                .where(
                    PolicyState.id == 1,
                    PolicyState.revision == revision,
                    or_(
                        PolicyState.content_hash.is_(None),
                        PolicyState.content_hash != fingerprint,
                    ),
                )
                .values(content_hash=fingerprint)
            )


async def bump_revision(session: AsyncSession) -> int:
    """Increment inside the caller's transaction (so a rule change and its revision commit
    together); the row lock serialises concurrent writers. The remembered fingerprint is
    cleared: the first instance to load the new content records it."""
    result = await session.execute(
        update(PolicyState)
        .where(PolicyState.id == 1)
        .values(revision=PolicyState.revision + 1, content_hash=None, updated_at=utcnow())
        .returning(PolicyState.revision)
    )
    return int(result.scalar_one())
