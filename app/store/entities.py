"""The entity store in the database: `entities` rows and `policy_state.entity_revision`.

Every write bumps the entity revision in the same transaction (the row lock on
`policy_state` serialises writers), so the revision an instance reads always labels the
content it then loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.note import Source
from app.policy.entities import EntitySet, StoredEntity
from app.store.audit_log import AuditLog
from app.store.database import Database
from app.store.models import PolicyState, StoredEntityRow, User, utcnow


def _entity(row: StoredEntityRow) -> StoredEntity:
    return StoredEntity.from_dict(
        {"type": row.type, "id": row.id, "properties": row.properties, "parents": row.parents}
    )


async def bump_entity_revision(session: AsyncSession) -> int:
    """A new entity revision inside the caller's transaction (token-service users are
    entities too: creating or disabling one changes the store)."""
    return await _bump(session)


async def _bump(session: AsyncSession) -> int:
    result = await session.execute(
        update(PolicyState)
        .where(PolicyState.id == 1)
        .values(entity_revision=PolicyState.entity_revision + 1, updated_at=utcnow())
        .returning(PolicyState.entity_revision)
    )
    return int(result.scalar_one())


@dataclass(frozen=True)
class Actor:
    """Who changes the store, for the audit log."""

    name: str
    source: Source
    request_id: str | None = None


class EntityStore:
    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit or AuditLog()

    async def revision(self) -> int:
        async with self.db.sessions() as session:
            value = await session.scalar(
                select(PolicyState.entity_revision).where(PolicyState.id == 1)
            )
        return int(value or 0)

    async def load(self) -> EntitySet:
        """Every entity with the revision it was read at (one transaction).

        Users of the token service are entities of type `user` (keyed by username) with
        the properties `is_admin` and `disabled`; a stored `user` entity of the same id adds
        its own properties (which win) and parents (which become roles, in decisions and in
        the `roles` claim of the user's tokens)."""
        async with self.db.sessions() as session, session.begin():
            revision = await session.scalar(
                select(PolicyState.entity_revision).where(PolicyState.id == 1)
            )
            rows = (await session.scalars(select(StoredEntityRow))).all()
            users = (
                await session.execute(select(User.username, User.is_admin, User.disabled))
            ).all()
        stored = {(r.type, r.id): _entity(r) for r in rows}
        for username, is_admin, disabled in users:
            base = {"is_admin": bool(is_admin), "disabled": bool(disabled)}
            own = stored.get(("user", username))
            stored[("user", username)] = StoredEntity(
                "user",
                username,
                {**base, **(own.properties if own else {})},
                own.parents if own else (),
            )
        return EntitySet.of(stored.values(), revision=int(revision or 0))

    async def get(self, type: str, id: str) -> StoredEntity | None:
        async with self.db.sessions() as session:
            row = await session.get(StoredEntityRow, (type, id))
        return _entity(row) if row is not None else None

    async def page(
        self, *, type: str | None, after: tuple[str, str] | None, limit: int
    ) -> tuple[list[StoredEntity], int]:
        """Entities ordered by (type, id) after the cursor, and how many match in all."""
        query = select(StoredEntityRow)
        count = select(func.count()).select_from(StoredEntityRow)
        if type is not None:
            query = query.where(StoredEntityRow.type == type)
            count = count.where(StoredEntityRow.type == type)
        if after is not None:
            query = query.where(
                (StoredEntityRow.type > after[0])
                | ((StoredEntityRow.type == after[0]) & (StoredEntityRow.id > after[1]))
            )
        query = query.order_by(StoredEntityRow.type, StoredEntityRow.id).limit(limit)
        async with self.db.sessions() as session:
            rows = (await session.scalars(query)).all()
            total = int(await session.scalar(count) or 0)
        return [_entity(r) for r in rows], total

    async def put_many(
        self, entities: Sequence[StoredEntity], *, actor: Actor, replace: bool = False
    ) -> int:
        """Create or replace `entities` (all or none); `replace` first removes every other
        entity. Returns the new entity revision."""
        unique = list({(e.type, e.id): e for e in entities}.values())
        async with self.db.transaction() as session:
            revision = await _bump(session)
            if replace:
                await session.execute(delete(StoredEntityRow))
            for entity in unique:
                data = entity.as_dict()
                row = (
                    None
                    if replace
                    else await session.get(StoredEntityRow, (entity.type, entity.id))
                )
                if row is None:
                    session.add(
                        StoredEntityRow(
                            type=entity.type,
                            id=entity.id,
                            properties=data["properties"],
                            parents=data["parents"],
                            updated_at=utcnow(),
                        )
                    )
                else:
                    row.properties = data["properties"]
                    row.parents = data["parents"]
                    row.updated_at = utcnow()
            await session.flush()
            await self.audit.record(
                session,
                actor=actor.name,
                action="entities.replace" if replace else "entities.put",
                source=actor.source,
                request_id=actor.request_id,
                target=unique[0].key if len(unique) == 1 else None,
                after=unique[0].as_dict() if len(unique) == 1 else None,
                details={"count": len(unique), "entity_revision": revision},
            )
        return revision

    async def delete(self, type: str, id: str, *, actor: Actor) -> int | None:
        """Remove one entity; the new revision, or None when there was no such entity."""
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(StoredEntityRow).where(
                    StoredEntityRow.type == type, StoredEntityRow.id == id
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            revision = await _bump(session)
            await self.audit.record(
                session,
                actor=actor.name,
                action="entities.delete",
                source=actor.source,
                request_id=actor.request_id,
                target=f"{type}/{id}",
                details={"entity_revision": revision},
            )
            return revision
