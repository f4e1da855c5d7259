"""Issuing tokens: short-lived JWT access tokens and rotating opaque refresh tokens.

A login starts a refresh *family* (the access token's `sid`). Every refresh rotates: the
presented token is marked used and a new one of the same family is returned. Presenting a
used token again means two parties hold it (one of them a thief), so the whole family is
revoked, including the access tokens it produced.

v1 tokens carry no `scope`; v2 and OAuth tokens carry the subject's permissions at issue time,
intersected with what was asked for and what the client may hold (`ScopeResolver.grant`).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from loguru import logger

from app.errors import (
    DeviceMismatch,
    InsufficientScope,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
)
from app.policy.snapshot import PolicySnapshot
from app.security.fingerprint import fingerprint_hash, fingerprint_matches
from app.tokens import jose
from app.tokens.claims import build_claims
from app.tokens.keys import KeyRing
from app.tokens.metrics import TokenMetrics
from app.tokens.models import RefreshRecord, UserRecord
from app.tokens.ports import RefreshTokenStore, UserStore
from app.tokens.revocation import Revocations
from app.tokens.scopes import ScopeResolver, covers

REFRESH_TOKEN_PREFIX = "omsrt_"  # noqa: S105


def hash_refresh_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class PolicySource(Protocol):
    @property
    def snapshot(self) -> PolicySnapshot: ...


class RefreshLimiter(Protocol):
    async def refresh(self, *, user_id: str) -> None: ...


@dataclass(frozen=True)
class TokenConfig:
    issuer: str
    audience: str
    access_ttl: int
    refresh_ttl: int


@dataclass(frozen=True)
class ClientContext:
    """The client a token is issued to. `allowed_scopes=None`: no restriction (first party)."""

    client_id: str
    allowed_scopes: tuple[str, ...] | None = None
    audience: str | None = None


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    claims: dict[str, Any]
    refresh_token: str | None = None
    refresh_expires_in: int | None = None

    @property
    def scope(self) -> str | None:
        value = self.claims.get("scope")
        return value if isinstance(value, str) else None

    def body(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 token response."""
        out: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if self.refresh_token is not None:
            out["refresh_token"] = self.refresh_token
            out["refresh_expires_in"] = self.refresh_expires_in
        if self.scope is not None:
            out["scope"] = self.scope
        return out


@dataclass
class TokenIssuer:
    config: TokenConfig
    keys: KeyRing
    policy: PolicySource
    scopes: ScopeResolver
    refresh_tokens: RefreshTokenStore
    users: UserStore
    revocations: Revocations
    limiter: RefreshLimiter | None = None
    metrics: TokenMetrics | None = None
    clock: Callable[[], float] = field(default=time.time)

    # -- users -------------------------------------------------------------------------
    async def for_user(
        self,
        user: UserRecord,
        *,
        client: ClientContext,
        version: str,
        requested: Sequence[str] | None,
        fingerprint: str | None,
        ip: str | None,
        grant: str,
    ) -> IssuedTokens:
        """Access + refresh token for a user who just proved their password."""
        family = str(uuid.uuid4())
        fpt = fingerprint_hash(fingerprint)
        refresh_raw, refresh_record = self._new_refresh(
            user_id=user.id,
            client_id=client.client_id,
            family=family,
            scope=" ".join(requested or ()),
            version=version,
            fpt=fpt,
        )
        issued = await self._access(
            subject=user.username,
            is_admin=user.is_admin,
            client=client,
            version=version,
            requested=requested,
            fpt=fpt,
            session=family,
        )
        await self.refresh_tokens.add(refresh_record)
        self._log(issued, user_id=user.id, ip=ip, grant=grant, refresh_family=family)
        return IssuedTokens(
            issued.access_token,
            issued.expires_in,
            issued.claims,
            refresh_raw,
            self.config.refresh_ttl,
        )

    # -- clients -----------------------------------------------------------------------
    async def for_client(
        self, client: ClientContext, *, requested: Sequence[str] | None, ip: str | None
    ) -> IssuedTokens:
        """A client acting on its own behalf (client_credentials): no refresh token."""
        issued = await self._access(
            subject=f"client:{client.client_id}",
            is_admin=False,
            client=client,
            version="v2",
            requested=requested,
            fpt=None,
            session=None,
        )
        self._log(issued, user_id=None, ip=ip, grant="client_credentials", refresh_family=None)
        return issued

    # -- refresh -----------------------------------------------------------------------
    async def refresh(
        self,
        raw: str,
        *,
        client: ClientContext,
        requested: Sequence[str] | None,
        fingerprint: str | None,
        ip: str | None,
    ) -> IssuedTokens:
        record = await self._usable_refresh(raw, client=client, fingerprint=fingerprint, ip=ip)
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
        scope = tuple(requested) if requested else (original or None)
        new_raw, new_record = self._new_refresh(
            user_id=user.id,
            client_id=record.client_id,
            family=record.family_id,
            scope=record.scope,
            version=record.token_version,
            fpt=record.fingerprint_hash,
        )
        # Built first: if the scope cannot be granted, the presented token stays usable.
        issued = await self._access(
            subject=user.username,
            is_admin=user.is_admin,
            client=client,
            version=record.token_version,
            requested=scope,
            fpt=record.fingerprint_hash,
            session=record.family_id,
        )
        now = datetime.fromtimestamp(self.clock(), UTC)
        if not await self.refresh_tokens.rotate(old_hash=record.token_hash, new=new_record, at=now):
            await self._reuse_detected(record, ip=ip)
        self._log(issued, user_id=user.id, ip=ip, grant="refresh_token", refresh_family=None)
        return IssuedTokens(
            issued.access_token, issued.expires_in, issued.claims, new_raw, self.config.refresh_ttl
        )

    async def _usable_refresh(
        self, raw: str, *, client: ClientContext, fingerprint: str | None, ip: str | None
    ) -> RefreshRecord:
        record = await self.refresh_tokens.find(hash_refresh_token(raw)) if raw else None
        if record is None or record.client_id != client.client_id:
            raise TokenInvalid("Refresh token is invalid", details={"token_type": "refresh"})
        if record.revoked_at is not None:
            raise TokenRevoked("Refresh token was revoked", details={"reason": "revoked"})
        if record.rotated_at is not None:
            await self._reuse_detected(record, ip=ip)
        if record.expires_at.timestamp() <= self.clock():
            raise TokenExpired(
                "Refresh token has expired",
                details={"expired_at": record.expires_at.isoformat().replace("+00:00", "Z")},
            )
        if not fingerprint_matches(record.fingerprint_hash, fingerprint):
            raise DeviceMismatch(details={"token_type": "refresh"})
        return record

    async def _reuse_detected(self, record: RefreshRecord, *, ip: str | None) -> None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        await self.refresh_tokens.revoke_family(family_id=record.family_id, at=now)
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

    # -- building blocks ---------------------------------------------------------------
    def _new_refresh(
        self,
        *,
        user_id: str,
        client_id: str,
        family: str,
        scope: str,
        version: str,
        fpt: str | None,
    ) -> tuple[str, RefreshRecord]:
        raw = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.fromtimestamp(self.clock(), UTC)
        record = RefreshRecord(
            token_hash=hash_refresh_token(raw),
            family_id=family,
            user_id=user_id,
            client_id=client_id,
            scope=scope,
            token_version=version,
            fingerprint_hash=fpt,
            issued_at=now,
            expires_at=now + timedelta(seconds=self.config.refresh_ttl),
        )
        return raw, record

    async def _access(
        self,
        *,
        subject: str,
        is_admin: bool,
        client: ClientContext,
        version: str,
        requested: Sequence[str] | None,
        fpt: str | None,
        session: str | None,
    ) -> IssuedTokens:
        # The instant is taken before the policy is read: a token stamped after a permission
        # change was certainly built from the new policy (see app.tokens.staleness).
        now_ms = int(self.clock() * 1000)
        snapshot = self.policy.snapshot
        scope: tuple[str, ...] | None = None
        if version != "v1":
            scope = self.scopes.grant(
                snapshot, subject, requested=requested, client_allows=client.allowed_scopes
            )
            if requested and not scope:
                raise InsufficientScope(
                    "None of the requested scopes can be granted",
                    details={"requested": list(requested)},
                )
        claims = build_claims(
            issuer=self.config.issuer,
            subject=subject,
            audience=client.audience or self.config.audience,
            client_id=client.client_id,
            now_ms=now_ms,
            ttl=self.config.access_ttl,
            roles=snapshot.implicit_roles(subject),
            is_admin=is_admin,
            scope=scope,
            fingerprint_hash=fpt,
            session=session,
        )
        signer = await self.keys.signer()
        token = jose.sign(claims, key=signer.key, kid=signer.kid, alg=signer.alg)
        return IssuedTokens(token, self.config.access_ttl, claims)

    def _log(
        self,
        issued: IssuedTokens,
        *,
        user_id: str | None,
        ip: str | None,
        grant: str,
        refresh_family: str | None,
    ) -> None:
        claims = issued.claims
        version = "v2" if "scope" in claims else "v1"
        scopes = claims.get("scope", "").split() if version == "v2" else None
        logger.info(
            "auth.token.created",
            user_id=user_id,
            subject=claims["sub"],
            token_type="access",  # noqa: S106
            jti=claims["jti"],
            scopes=scopes,
            client_id=claims["client_id"],
            grant=grant,
            version=version,
            ip=ip,
        )
        if self.metrics is not None:
            self.metrics.issued.labels(kind="access", grant=grant, version=version).inc()
        if refresh_family is not None or grant == "refresh_token":
            logger.info(
                "auth.token.created",
                user_id=user_id,
                subject=claims["sub"],
                token_type="refresh",  # noqa: S106
                session_id=claims.get("sid"),
                scopes=scopes,
                client_id=claims["client_id"],
                grant=grant,
                ip=ip,
            )
            if self.metrics is not None:
                self.metrics.issued.labels(kind="refresh", grant=grant, version=version).inc()
