"""The storage the token service needs, as small interfaces.

The database implementations live in `app.store` (users, clients, refresh_tokens,
signing_keys, revocations), the Redis fast path in `app.adapters.redis.revocation_cache`; the
in-process fast path is `app.tokens.revocation.MemoryRevocationCache`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from app.audit.note import AuditNote, SecurityAlert
from app.tokens.models import (
    ClientRecord,
    RefreshRecord,
    RevocationState,
    StoredKey,
    UserRecord,
)


class UserStore(Protocol):
    async def by_username(self, username: str) -> UserRecord | None: ...

    async def by_id(self, user_id: str) -> UserRecord | None: ...

    async def set_password_hash(self, *, user_id: str, password_hash: str) -> None: ...

    async def disable(
        self, *, username: str, at: datetime, audit: AuditNote | None = None
    ) -> UserRecord | None:
        """Mark the user disabled and cut off its tokens issued before `at` (audited with
        `audit`, in the same transaction)."""
        ...

    async def cut_off(self, *, usernames: Collection[str], at: datetime) -> list[str]:
        """Set `tokens_valid_after` to `at` (never moving it back); returns the users found."""
        ...


class ClientStore(Protocol):
    async def get(self, client_id: str) -> ClientRecord | None: ...

    async def disable(
        self, *, client_id: str, at: datetime, audit: AuditNote | None = None
    ) -> bool:
        """Mark the client disabled and cut off the tokens naming it issued before `at`."""
        ...

    async def cut_off(self, *, client_ids: Collection[str], at: datetime) -> list[str]:
        """Set `tokens_valid_after` to `at` (never moving it back); returns the clients found."""
        ...


class RefreshTokenStore(Protocol):
    async def add(self, record: RefreshRecord) -> None: ...

    async def find(self, token_hash: str) -> RefreshRecord | None: ...

    async def rotate(
        self, *, old_hash: str, new: RefreshRecord, at: datetime, sealed: bytes | None = None
    ) -> bool:
        """Atomically mark `old_hash` rotated and store `new`; False when it was already
        rotated or revoked (someone else used it first)."""
        ...

    async def revoke_family(
        self, *, family_id: str, at: datetime, alert: SecurityAlert | None = None
    ) -> int:
        """Revoke every token of the family; audit `alert` in the same transaction."""
        ...

    async def revoke_user(self, *, user_id: str, at: datetime) -> list[str]:
        """Revoke every live family of a user; returns the family ids."""
        ...

    async def purge(self, *, before: datetime) -> int:
        """Delete tokens that expired before `before`."""
        ...


class KeyStore(Protocol):
    async def load(self) -> list[StoredKey]: ...

    async def activate(self, key: StoredKey, *, at: datetime) -> None:
        """Store `key` as the active key and demote every other active key to previous,
        in one step."""
        ...


class RevocationStore(Protocol):
    """The durable record (database): the source of truth."""

    async def revoke(
        self,
        *,
        ids: Sequence[tuple[str, float]],
        subject: str | None,
        reason: str,
        at: datetime,
    ) -> None:
        """Record revoked token ids (`jti`, or `sid:<family>`) with the epoch second until
        which each matters."""
        ...

    async def lookup(
        self, *, jtis: Collection[str], sessions: Collection[str], subjects: Collection[str]
    ) -> RevocationState:
        """Everything known about these ids and subjects, in one round trip."""
        ...

    async def active(self, *, now: datetime, horizon_seconds: int) -> RevocationState:
        """Every entry that can still affect a live token."""
        ...

    async def purge(self, *, before: datetime) -> int: ...


class RevocationCache(Protocol):
    """The fast path (Redis, or the process itself). It answers only when it is complete,
    i.e. holds everything the durable store holds; otherwise `lookup` returns None."""

    async def lookup(
        self, *, jtis: Collection[str], sessions: Collection[str], subjects: Collection[str]
    ) -> RevocationState | None: ...

    async def remember(self, state: RevocationState) -> None: ...

    async def fill(self, state: RevocationState, *, complete_for: float) -> None:
        """Load a full copy of the durable store and mark the cache complete for
        `complete_for` seconds."""
        ...

    async def forget_completeness(self) -> None: ...
