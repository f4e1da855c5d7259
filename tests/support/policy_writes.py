"""Policy changes as a writer makes them: rules and the revision bump in one transaction."""

from __future__ import annotations

from sqlalchemy import delete, insert

from app.store.database import Database
from app.store.models import CasbinRule
from app.store.revisions import bump_revision


def _columns(values: tuple[str, ...]) -> dict[str, str]:
    return {f"v{i}": v for i, v in enumerate(values)}


async def add_rule(url: str, ptype: str, *values: str) -> int:
    """Insert one rule and bump the revision atomically; returns the new revision."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(insert(CasbinRule).values(ptype=ptype, **_columns(values)))
            return await bump_revision(session)
    finally:
        await db.close()


async def remove_rule(url: str, ptype: str, *values: str) -> int:
    db = Database(url)
    try:
        async with db.transaction() as session:
            condition = [CasbinRule.ptype == ptype]
            condition += [getattr(CasbinRule, k) == v for k, v in _columns(values).items()]
            await session.execute(delete(CasbinRule).where(*condition))
            return await bump_revision(session)
    finally:
        await db.close()
