"""Refreshing: every use rotates the refresh token; a second use revokes the family.

Presenting a token that was already used means two parties hold it (one of them a thief), so
the whole family is revoked, including the access tokens it produced (their `sid`). Two
concurrent refreshes with the same token cannot both rotate it: the rotation is one
conditional UPDATE.

Retries are not thefts: a client whose refresh response was lost presents the same token
again. Within `grace` seconds of the rotation (`OMS_AUTH_REFRESH_REUSE_GRACE`), and while the
successor has not been used itself, the retry gets the *same* successor refresh token back
(and a new access token). The successor is stored sealed with a key derived from the presented
token, which the database never holds, so only a holder of that token can read it. Beyond the
grace period, or once the successor was used, a second use is reuse, as above. The loser of a
concurrent race is such a retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn, Protocol

from loguru import logger

from app.audit.note import SecurityAlert
from app.errors import (
    DeviceMismatch,
    InsufficientScope,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
)
from app.observability.logging import request_id_var
from app.security.fingerprint import fingerprint_matches
from app.tokens.issuer import ClientContext, IssuedTokens, TokenIssuer
from app.tokens.metrics import TokenMetrics
from app.tokens.models import RefreshRecord, UserRecord
from app.tokens.ports import RefreshTokenStore, UserStore
from app.tokens.refresh_tokens import (
    hash_refresh_token,
    new_refresh_token,
    open_successor,
    seal_successor,
)
from app.tokens.revocation import Revocations
from app.tokens.scopes import covers


class RefreshLimiter(Protocol):
    async def refresh(self, *, user_id: str) -> None: ...


@dataclass
class RefreshRotation:
    issuer: TokenIssuer
    refresh_tokens: RefreshTokenStore
    users: UserStore
    revocations: Revocations
    limiter: RefreshLimiter | None = None
    metrics: TokenMetrics | None = None
    clock: Callable[[], float] = field(default=time.time)
    grace: float = 0.0  # seconds after a rotation in which a retry gets the same successor

    async def refresh(
        self,
        raw: str,
        *,
        client: ClientContext,
        requested: Sequence[str] | None,
        fingerprint: str | None,
        ip: str | None,
    ) -> IssuedTokens:
        record = await self._find(raw, client=client)
        if record.rotated_at is not None:
            return await self._retry(raw, record, client, requested, fingerprint, ip)
        self._check_live(record, fingerprint)
        user, scope = await self._grantable(record, requested)
        now = datetime.fromtimestamp(self.clock(), UTC)
        new_raw, new_record = new_refresh_token(
            user_id=user.id,
            client_id=record.client_id,
            family=record.family_id,
            scope=record.scope,
            version=record.token_version,
            fingerprint_hash=record.fingerprint_hash,
            now=now,
            ttl=self.issuer.config.refresh_ttl,
        )
        # Built first: if the scope cannot be granted, the presented token stays usable.
        issued = await self.issuer.access(
            subject=user.username,
            is_admin=user.is_admin,
            client=client,
            version=record.token_version,
            requested=scope,
            fpt=record.fingerprint_hash,
            session=record.family_id,
        )
        rotated = await self.refresh_tokens.rotate(
            old_hash=record.token_hash,
            new=new_record,
            at=now,
            sealed=seal_successor(raw, new_raw) if self.grace > 0 else None,
        )
        if not rotated:  # a concurrent request rotated it first: this one is its retry
            latest = await self.refresh_tokens.find(record.token_hash)
            if latest is None or latest.rotated_at is None:
                await self._reuse_detected(record, ip=ip)
            return await self._retry(raw, latest, client, requested, fingerprint, ip)
        self.issuer.log(issued, user_id=user.id, ip=ip, grant="refresh_token", refresh_family=None)
        return IssuedTokens(
            issued.access_token,
            issued.expires_in,
            issued.claims,
            new_raw,
            self.issuer.config.refresh_ttl,
        )

    async def _find(self, raw: str, *, client: ClientContext) -> RefreshRecord:
        record = await self.refresh_tokens.find(hash_refresh_token(raw)) if raw else None
        if record is None or record.client_id != client.client_id:
            raise TokenInvalid("Refresh token is invalid", details={"token_type": "refresh"})
        if record.revoked_at is not None:
            raise TokenRevoked("Refresh token was revoked", details={"reason": "revoked"})
        return record

    def _check_live(self, record: RefreshRecord, fingerprint: str | None) -> None:
        if record.expires_at.timestamp() <= self.clock():
            raise TokenExpired(
                "Refresh token has expired",
                details={"expired_at": record.expires_at.isoformat().replace("+00:00", "Z")},
            )
        if not fingerprint_matches(record.fingerprint_hash, fingerprint):
            raise DeviceMismatch(details={"token_type": "refresh"})

    async def _grantable(
        self, record: RefreshRecord, requested: Sequence[str] | None
    ) -> tuple[UserRecord, tuple[str, ...] | None]:
        """The token's user (live) and the scope a refresh of it may carry."""
        user = await self.users.by_id(record.user_id) if record.user_id else None
        if user is None or user.disabled:
            raise TokenRevoked("Refresh token was revoked", details={"reason": "user_disabled"})
        if self.limiter is not None:
            await self.limiter.refresh(user_id=user.id)
        original = tuple(record.scope.split())
        if (
            requested
            and original
            and not all(any(covers(o, r) for o in original) for r in requested)
        ):
            raise InsufficientScope(
                "A refresh may not widen the scope of the original login",
                details={"requested": list(requested), "original": list(original)},
            )
        return user, (tuple(requested) if requested else (original or None))

    async def _retry(
        self,
        raw: str,
        record: RefreshRecord,
        client: ClientContext,
        requested: Sequence[str] | None,
        fingerprint: str | None,
        ip: str | None,
    ) -> IssuedTokens:
        """A rotated token presented again: its successor within the grace period, when that
        successor is still unused; reuse (the family dies) otherwise."""
        assert record.rotated_at is not None
        now = self.clock()
        if (
            self.grace <= 0
            or record.successor_sealed is None
            or now - record.rotated_at.timestamp() > self.grace
        ):
            await self._reuse_detected(record, ip=ip)
        successor_raw = open_successor(raw, record.successor_sealed)
        successor = (
            await self.refresh_tokens.find(hash_refresh_token(successor_raw))
            if successor_raw is not None
            else None
        )
        if (
            successor_raw is None
            or successor is None
            or successor.family_id != record.family_id
            or successor.rotated_at is not None
            or successor.revoked_at is not None
        ):
            await self._reuse_detected(record, ip=ip)
        self._check_live(successor, fingerprint)
        user, scope = await self._grantable(successor, requested)
        issued = await self.issuer.access(
            subject=user.username,
            is_admin=user.is_admin,
            client=client,
            version=successor.token_version,
            requested=scope,
            fpt=successor.fingerprint_hash,
            session=successor.family_id,
        )
        logger.info(
            "auth.refresh.retry_within_grace",
            user_id=user.id,
            family_id=record.family_id,
            seconds_after_rotation=round(now - record.rotated_at.timestamp(), 3),
            ip=ip,
        )
        self.issuer.log(issued, user_id=user.id, ip=ip, grant="refresh_token", refresh_family=None)
        return IssuedTokens(
            issued.access_token,
            issued.expires_in,
            issued.claims,
            successor_raw,
            max(1, int(successor.expires_at.timestamp() - now)),
        )

    async def _reuse_detected(self, record: RefreshRecord, *, ip: str | None) -> NoReturn:
        now = datetime.fromtimestamp(self.clock(), UTC)
        alert = SecurityAlert(
            kind="refresh_reuse",
            actor=f"user-id:{record.user_id}" if record.user_id else f"client:{record.client_id}",
            details={"client_id": record.client_id, "ip": ip},
            request_id=request_id_var.get(),
        )
        await self.refresh_tokens.revoke_family(family_id=record.family_id, at=now, alert=alert)
        if self.metrics is not None:
            self.metrics.alerts.labels(kind=alert.kind).inc()
        await self.revocations.revoke(
            subject=None, reason="refresh_reuse", sessions=[record.family_id]
        )
        logger.warning(
            "auth.refresh.reuse_detected",
            user_id=record.user_id,
            client_id=record.client_id,
            family_id=record.family_id,
            ip=ip,
        )
        raise TokenRevoked(
            "Refresh token was already used; the session has been revoked",
            details={"reason": "reuse_detected"},
        )
