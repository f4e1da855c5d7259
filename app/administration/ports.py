"""The storage administration needs, as small interfaces (SQL ones in `app.store`).

A policy change is one unit of work: take the revision (its row lock serialises writers
across instances), read the stored rules, write the change and its audit event, commit all
together or nothing (`PolicyStore.transaction`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from app.audit.note import AuditNote
from app.audit.ports import AuditRecorder
from app.policy.rules import Rule
from app.tokens.ports import UserStore


class PolicyTransaction(AuditRecorder, Protocol):
    async def bump_revision(self) -> int:
        """Take the next policy revision (locks it until the transaction ends)."""
        ...

    async def read_rules(self) -> list[Rule]:
        """Every stored rule in insertion order (duplicates included)."""
        ...

    async def insert_rules(self, rules: Sequence[Rule]) -> None: ...

    async def delete_rule(self, rule: Rule) -> int:
        """Delete every stored copy of `rule`; returns how many there were."""
        ...


class PolicyStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[PolicyTransaction]:
        """One unit of work: committed on success, rolled back on error."""
        ...

    async def user_exists(self, username: str) -> bool: ...


@dataclass(frozen=True)
class NewUser:
    username: str
    password_hash: str
    is_admin: bool = False
    roles: tuple[str, ...] = ()
    attributes: dict[str, Any] | None = None


class UserAdminStore(UserStore, Protocol):
    """Users with their roles and attributes; each write is one transaction with its audit
    event and, when roles change, a new policy revision (returned, None when none)."""

    async def create_many(self, users: Sequence[NewUser], *, audit: AuditNote) -> int | None: ...

    async def details(self, username: str) -> dict[str, Any] | None: ...

    async def update(
        self,
        username: str,
        *,
        roles: Sequence[str] | None,
        attributes: dict[str, Any] | None,
        is_admin: bool | None,
        audit: AuditNote,
    ) -> tuple[dict[str, Any], int | None] | None: ...

    async def delete(self, username: str, *, audit: AuditNote) -> tuple[str, int | None] | None: ...
