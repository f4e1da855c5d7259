"""Users: identities that log in with a password. Their roles are Casbin `g` rules.

Creating a user with roles writes the user row, its `g` rules in `casbin_rule` and a new
policy revision in one transaction, so running instances pick the roles up on their next
reload and never see a user without the roles it was created with.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.administration.ports import NewUser
from app.audit.note import AuditNote
from app.errors import Conflict
from app.store.audit_log import AuditLog
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


def _role_rules(username: str, roles: Sequence[str]) -> list[CasbinRule]:
    return [CasbinRule(ptype="g", v0=username, v1=role) for role in roles]


def _direct_roles_query(username: str) -> Any:
    return select(CasbinRule).where(
        CasbinRule.ptype == "g",
        CasbinRule.v0 == username,
        CasbinRule.v2.is_(None),
    )


class UserAdminRepository(UserRepository):
    """Writes of the user admin API and `users import`: each one transaction, one policy
    revision at most, audited in the same transaction."""

    async def create_many(self, users: Sequence[NewUser], *, audit: AuditNote) -> int | None:
        """Insert every user and its role rules; the policy revision they commit as (None
        when no role was given). All or nothing: an existing username fails the whole batch
        with `Conflict` naming it."""
        try:
            async with self.db.transaction() as s:
                names = [u.username for u in users]
                existing: list[str] = []
                for start in range(0, len(names), 500):
                    chunk = names[start : start + 500]
                    existing += list(
                        await s.scalars(select(User.username).where(User.username.in_(chunk)))
                    )
                if existing:
                    raise Conflict(
                        f"{len(existing)} user(s) already exist, e.g. {sorted(existing)[0]!r}",
                        details={"existing": sorted(existing)[:20]},
                    )
                for u in users:
                    s.add(
                        User(
                            id=str(uuid.uuid4()),
                            username=u.username,
                            password_hash=u.password_hash,
                            is_admin=u.is_admin,
                            attributes=u.attributes,
                        )
                    )
                    s.add_all(_role_rules(u.username, u.roles))
                await s.flush()
                revision = await bump_revision(s) if any(u.roles for u in users) else None
                log = AuditLog()
                for u in users:
                    await log.write(
                        s,
                        audit,
                        action="user.created",
                        target=f"user:{u.username}",
                        after={
                            "username": u.username,
                            "is_admin": u.is_admin,
                            "roles": list(u.roles),
                            "attributes": u.attributes or {},
                        },
                        details={"policy_revision": revision} if revision else None,
                    )
        except IntegrityError:
            raise Conflict("a user in this batch already exists") from None
        return revision

    async def details(self, username: str) -> dict[str, Any] | None:
        async with self.db.sessions() as s:
            row = await s.scalar(select(User).where(User.username == username))
            if row is None:
                return None
            roles = (await s.scalars(_direct_roles_query(username).order_by(CasbinRule.id))).all()
        return {
            "username": row.username,
            "id": row.id,
            "is_admin": row.is_admin,
            "disabled": row.disabled,
            "roles": [str(r.v1) for r in roles],
            "attributes": row.attributes or {},
        }

    async def update(
        self,
        username: str,
        *,
        roles: Sequence[str] | None,
        attributes: dict[str, Any] | None,
        is_admin: bool | None,
        audit: AuditNote,
    ) -> tuple[dict[str, Any], int | None] | None:
        """Replace the user's direct roles and/or attributes; (after, revision) or None."""
        async with self.db.transaction() as s:
            row = await s.scalar(select(User).where(User.username == username))
            if row is None:
                return None
            current = (await s.scalars(_direct_roles_query(username).order_by(CasbinRule.id))).all()
            before = {
                "roles": [str(r.v1) for r in current],
                "attributes": row.attributes or {},
                "is_admin": row.is_admin,
            }
            revision = None
            new_roles = before["roles"]
            if roles is not None and list(roles) != before["roles"]:
                for r in current:
                    await s.delete(r)
                s.add_all(_role_rules(username, roles))
                await s.flush()
                revision = await bump_revision(s)
                new_roles = list(roles)
            if attributes is not None:
                row.attributes = attributes
            if is_admin is not None:
                row.is_admin = is_admin
            row.updated_at = utcnow()
            after = {
                "roles": new_roles,
                "attributes": row.attributes or {},
                "is_admin": row.is_admin,
            }
            await AuditLog().write(
                s,
                audit,
                action="user.updated",
                target=f"user:{username}",
                before=before,
                after=after,
                details={"policy_revision": revision} if revision else None,
            )
        return {"username": username, "id": row.id, "disabled": row.disabled, **after}, revision

    async def delete(self, username: str, *, audit: AuditNote) -> tuple[str, int | None] | None:
        """Delete the user, its refresh tokens (cascade) and its role rules; (id, revision)."""
        async with self.db.transaction() as s:
            row = await s.scalar(select(User).where(User.username == username))
            if row is None:
                return None
            user_id = row.id
            rules = (await s.scalars(_direct_roles_query(username))).all()
            for r in rules:
                await s.delete(r)
            await s.delete(row)
            await s.flush()
            revision = await bump_revision(s) if rules else None
            await AuditLog().write(
                s,
                audit,
                action="user.deleted",
                target=f"user:{username}",
                before={"username": username, "roles": [str(r.v1) for r in rules]},
                details={"policy_revision": revision} if revision else None,
            )
        return user_id, revision
