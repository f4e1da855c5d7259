"""Users: identities that log in with a password. Their roles are Casbin `g` rules.

Creating a user with roles writes the user row, its `g` rules in `casbin_rule` and a new
policy revision in one transaction, so running instances pick the roles up on their next
reload and never see a user without the roles it was created with.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.audit.log import AuditLog, AuditNote
from app.errors import Conflict
from app.store.cut_offs import advance_cut_off
from app.store.database import Database
from app.store.entities import bump_entity_revision
from app.store.models import CasbinRule, User, utcnow
from app.store.revisions import bump_revision
from app.tokens.models import UserRecord


def _record(row: User) -> UserRecord:
    return UserRecord(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        is_admin=row.is_admin,
        disabled=row.disabled,
        tokens_valid_after=row.tokens_valid_after,
    )


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_username(self, username: str) -> UserRecord | None:
        async with self.db.sessions() as s:
            row = await s.scalar(select(User).where(User.username == username))
        return _record(row) if row is not None else None

    async def by_id(self, user_id: str) -> UserRecord | None:
        async with self.db.sessions() as s:
            row = await s.get(User, user_id)
        return _record(row) if row is not None else None

    async def count(self) -> int:
        async with self.db.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(User)) or 0)

    async def all(self) -> list[UserRecord]:
        async with self.db.sessions() as s:
            rows = (await s.scalars(select(User).order_by(User.username))).all()
        return [_record(r) for r in rows]

    async def create(
        self,
        *,
        username: str,
        password_hash: str,
        is_admin: bool = False,
        roles: Sequence[str] = (),
        only_if_empty: bool = False,
        audit: AuditNote | None = None,
    ) -> UserRecord | None:
        """Insert the user and its role rules, bumping the policy revision when roles are
        given. With `only_if_empty`, does nothing (returns None) when any user exists.
        With `audit`, the creation is audited in the same transaction."""
        row = User(
            id=str(uuid.uuid4()),
            username=username,
            password_hash=password_hash,
            is_admin=is_admin,
        )
        try:
            async with self.db.transaction() as s:
                if only_if_empty and await s.scalar(select(User.id).limit(1)) is not None:
                    return None
                s.add(row)
                await bump_entity_revision(s)  # the user is an entity of the store too
                for role in roles:
                    s.add(CasbinRule(ptype="g", v0=username, v1=role))
                revision = None
                if roles:
                    await s.flush()
                    revision = await bump_revision(s)
                if audit is not None:
                    await AuditLog().write(
                        s,
                        audit,
                        action="user.created",
                        target=f"user:{username}",
                        after={"username": username, "is_admin": is_admin, "roles": list(roles)},
                        details={"policy_revision": revision} if revision else None,
                    )
        except IntegrityError:
            if only_if_empty:
                return None
            raise Conflict(f"user {username!r} already exists") from None
        return _record(row)

    async def set_password_hash(self, *, user_id: str, password_hash: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(User)
                .where(User.id == user_id)
                .values(password_hash=password_hash, updated_at=utcnow())
            )

    async def disable(
        self, *, username: str, at: datetime, audit: AuditNote | None = None
    ) -> UserRecord | None:
        """Disable the user and cut off every token issued to it so far."""
        async with self.db.transaction() as s:
            row = await s.scalar(select(User).where(User.username == username))
            if row is None:
                return None
            before = {"disabled": row.disabled}
            row.disabled = True
            await bump_entity_revision(s)
            if row.tokens_valid_after is None or row.tokens_valid_after < at:
                row.tokens_valid_after = at
            if audit is not None:
                await AuditLog().write(
                    s,
                    audit,
                    action="user.disabled",
                    target=f"user:{username}",
                    before=before,
                    after={"disabled": True, "tokens_valid_after": at.isoformat()},
                )
        return _record(row)

    async def cut_off(self, *, usernames: Collection[str], at: datetime) -> list[str]:
        """Move `tokens_valid_after` forward to `at` (never back) for the users that exist."""
        async with self.db.transaction() as s:
            return await advance_cut_off(s, User, User.username, usernames, at, updated_at=utcnow())
