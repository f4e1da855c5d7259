"""Rules in the `casbin_rule` table, read and written inside the caller's transaction.

The service reads this table through casbin-sqlalchemy-adapter (`policy_rules.py`); writes
go through here so they share one transaction with the audit row and the revision bump.
Unused columns are NULL, which is what the adapter writes and reads back.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.policy.rules import DB_SOURCE, MAX_FIELDS, Rule
from app.store.models import CasbinRule


def _columns() -> list[ColumnElement[str | None]]:
    return [getattr(CasbinRule, f"v{i}") for i in range(MAX_FIELDS)]


async def read_rules(session: AsyncSession) -> list[Rule]:
    """Every stored rule in insertion order (duplicates included)."""
    rows = await session.scalars(select(CasbinRule).order_by(CasbinRule.id))
    return [Rule(row.ptype, tuple(row.values()), DB_SOURCE) for row in rows]


async def insert_rules(session: AsyncSession, rules: Sequence[Rule]) -> None:
    if not rules:
        return
    values = [{"ptype": r.ptype, **{f"v{i}": v for i, v in enumerate(r.values)}} for r in rules]
    await session.execute(insert(CasbinRule), values)


async def delete_rule(session: AsyncSession, rule: Rule) -> int:
    """Delete every row holding exactly this rule; returns how many there were."""
    conditions: list[ColumnElement[bool]] = [CasbinRule.ptype == rule.ptype]
    for i, column in enumerate(_columns()):
        conditions.append(column == rule.values[i] if i < len(rule.values) else column.is_(None))
    result = await session.execute(delete(CasbinRule).where(*conditions))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
