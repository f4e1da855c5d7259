"""`tokens_valid_after` on users and clients: moved forward, never back, in bounded chunks."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

_CHUNK = 500  # names per IN (...) list


async def advance_cut_off(
    session: AsyncSession, model: Any, key: Any, names: Collection[str], at: datetime, **also: Any
) -> list[str]:
    """Set `model.tokens_valid_after = at` where `key` is one of `names` and the cut-off is
    older; returns the names that exist. `also` are further columns to set."""
    ordered = sorted(set(names))
    found: list[str] = []
    column = model.tokens_valid_after
    for i in range(0, len(ordered), _CHUNK):
        chunk = ordered[i : i + _CHUNK]
        await session.execute(
            update(model)
            .where(key.in_(chunk))
            .where(or_(column.is_(None), column < at))
            .values(tokens_valid_after=at, **also)
        )
        found.extend((await session.scalars(select(key).where(key.in_(chunk)))).all())
    return found
