"""`app.administration.ports.PolicyStore` on the database: rule rows, the revision row and
the audit table written in one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.note import Source
from app.policy.rules import Rule
from app.store.audit_log import AuditLog
from app.store.database import Database
from app.store.revisions import bump_revision
from app.store.rule_rows import delete_rule, insert_rules, read_rules
from app.store.users import UserRepository


class SqlPolicyTransaction:
    def __init__(self, session: AsyncSession, audit: AuditLog) -> None:
        self.session = session
        self.audit = audit

    async def bump_revision(self) -> int:
        return await bump_revision(self.session)

    async def read_rules(self) -> list[Rule]:
        return await read_rules(self.session)

    async def insert_rules(self, rules: Sequence[Rule]) -> None:
        await insert_rules(self.session, rules)

    async def delete_rule(self, rule: Rule) -> int:
        return await delete_rule(self.session, rule)

    async def record(
        self,
        *,
        actor: str,
        action: str,
        source: Source,
        request_id: str | None = None,
        target: str | None = None,
        before: Any = None,
        after: Any = None,
        details: Any = None,
    ) -> int:
        return await self.audit.record(
            self.session,
            actor=actor,
            action=action,
            source=source,
            request_id=request_id,
            target=target,
            before=before,
            after=after,
            details=details,
        )


class SqlPolicyStore:
    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit or AuditLog()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlPolicyTransaction]:
        async with self.db.transaction() as session:
            yield SqlPolicyTransaction(session, self.audit)

    async def user_exists(self, username: str) -> bool:
        return await UserRepository(self.db).by_username(username) is not None
