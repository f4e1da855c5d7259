"""User administration: create, update roles and attributes, disable, unlock, delete.

The same rules as the CLI: names go through `check_username` (names that cannot be stored
as policy subjects are refused), passwords through `check_password_policy`, roles must be
defined by the live policy, and each change is one transaction with its audit row and at
most one new policy revision. Role changes are made live on this instance right after the
commit (a failure there reports `live: false`, never an error: the change is stored and every
instance picks it up on its next reload). Disabling and deleting cut off the user's tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from app.administration.ports import NewUser, UserAdminStore
from app.audit.note import AuditNote
from app.errors import AuthzError, NotFound, RequestInvalid, RoleNotFound
from app.policy.engine import PolicyEngine
from app.policy.snapshot import PolicySnapshot
from app.security.login_guard import AuditWriter, LoginGuard, unlock_account
from app.security.names import InvalidName, check_username
from app.security.passwords import PasswordHasher, WeakPassword, check_password_policy
from app.tokens.models import RevocationState
from app.tokens.ports import RefreshTokenStore
from app.tokens.revocation import Revocations
from app.tokens.service import disable_user


def policy_roles(snapshot: PolicySnapshot) -> set[str]:
    """Roles the policy defines: role names in `g` rules and subjects of `p` rules."""
    if not snapshot.model.is_rbac:
        return set()
    sub_i = snapshot.model.field_index("p", "sub") or 0
    _, roles = snapshot.subjects()
    return roles | {r.values[sub_i] for r in snapshot.rules if r.ptype == "p"}


def field_error(field: str, message: str) -> RequestInvalid:
    return RequestInvalid(message, details={"fields": [{"field": field, "message": message}]})


def valid_username(username: str, *, field: str = "username") -> str:
    try:
        return check_username(username)
    except InvalidName as exc:
        raise field_error(field, str(exc)) from None


def valid_password(password: str) -> str:
    try:
        check_password_policy(password)
    except WeakPassword as exc:
        raise field_error("password", str(exc)) from None
    return password


def unknown_roles(roles: Sequence[str], known: set[str]) -> list[str]:
    return [r for r in roles if r not in known]


@dataclass
class UserAdministration:
    repo: UserAdminStore
    refresh_tokens: RefreshTokenStore
    engine: PolicyEngine
    hasher: PasswordHasher
    revocations: Revocations
    guard: LoginGuard | None  # the per-account login back-off (None: no token service)
    # The audit writer for an unlock, by its author (its own transaction: an unlock changes
    # no row of ours).
    unlock_audit: Callable[[AuditNote], AuditWriter]

    def _check_roles(self, roles: Sequence[str]) -> list[str]:
        roles = list(dict.fromkeys(roles))
        missing = unknown_roles(roles, policy_roles(self.engine.snapshot))
        if missing:
            raise RoleNotFound(f"role {missing[0]!r} does not exist", details={"role": missing[0]})
        return roles

    async def create(
        self,
        *,
        username: str,
        password: str,
        roles: Sequence[str],
        is_admin: bool,
        attributes: dict[str, Any] | None,
        audit: AuditNote,
    ) -> dict[str, Any]:
        valid_username(username)
        valid_password(password)
        checked = self._check_roles(roles)
        password_hash = await self.hasher.hash(password)
        user = NewUser(username, password_hash, is_admin, tuple(checked), attributes or {})
        revision = await self.repo.create_many([user], audit=audit)
        found = await self.repo.details(username)
        assert found is not None
        logger.info("user.created", username=username, actor=audit.actor, revision=revision)
        return {**found, **await self._revision_and_live(revision)}

    async def get(self, username: str) -> dict[str, Any]:
        found = await self.repo.details(valid_username(username))
        if found is None:
            raise NotFound(f"no user {username!r}", details={"username": username})
        return found

    async def update(
        self,
        username: str,
        *,
        roles: Sequence[str] | None,
        attributes: dict[str, Any] | None,
        is_admin: bool | None,
        audit: AuditNote,
    ) -> dict[str, Any]:
        valid_username(username)
        checked = self._check_roles(roles) if roles is not None else None
        result = await self.repo.update(
            username, roles=checked, attributes=attributes, is_admin=is_admin, audit=audit
        )
        if result is None:
            raise NotFound(f"no user {username!r}", details={"username": username})
        after, revision = result
        logger.info("user.updated", username=username, actor=audit.actor, revision=revision)
        return {**after, **await self._revision_and_live(revision)}

    async def disable(self, username: str, *, audit: AuditNote) -> dict[str, Any]:
        user = await disable_user(
            valid_username(username),
            users=self.repo,
            refresh_tokens=self.refresh_tokens,
            revocations=self.revocations,
            audit=audit,
        )
        if user is None:
            raise NotFound(f"no user {username!r}", details={"username": username})
        return await self.get(username)

    async def unlock(self, username: str, *, audit: AuditNote) -> dict[str, Any]:
        found = await self.get(username)
        if self.guard is not None:
            await unlock_account(self.guard, username, audit=self.unlock_audit(audit))
        return found

    async def delete(self, username: str, *, audit: AuditNote) -> dict[str, Any]:
        valid_username(username)
        existing = await self.repo.by_username(username)
        if existing is None:
            raise NotFound(f"no user {username!r}", details={"username": username})
        # Sessions first: access tokens name their session, and the revocation record of a
        # session outlives the user row (a cut-off on the row would go with it).
        now = time.time()
        families = await self.refresh_tokens.revoke_user(
            user_id=existing.id, at=datetime.fromtimestamp(now, UTC)
        )
        if families:
            await self.revocations.revoke(
                subject=username, reason="user_deleted", sessions=families
            )
        result = await self.repo.delete(username, audit=audit)
        if result is None:
            raise NotFound(f"no user {username!r}", details={"username": username})
        _, revision = result
        await self.revocations.remember(RevocationState(valid_after={username: int(now * 1000)}))
        logger.info("user.deleted", username=username, actor=audit.actor, revision=revision)
        return {"username": username, "deleted": True, **await self._revision_and_live(revision)}

    async def _revision_and_live(self, revision: int | None) -> dict[str, Any]:
        if revision is None:
            return {"policy_revision": self.engine.revision, "live": True}
        try:
            await self.engine.load(trigger="api", bump=False)
            live = True
        except AuthzError as exc:
            logger.error("user.write.not_live", revision=revision, error=exc.message)
            live = False
        except Exception as exc:
            logger.error("user.write.not_live", revision=revision, error=type(exc).__name__)
            live = False
        return {"policy_revision": revision, "live": live}
