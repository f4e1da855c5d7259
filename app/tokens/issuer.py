"""Issuing tokens: short-lived JWT access tokens, plus a refresh token for users.

A login starts a refresh *family* (the access token's `sid`); `app.tokens.rotation` refreshes
it. v1 tokens carry no `scope`; v2 and OAuth tokens carry the subject's permissions at issue time,
intersected with what was asked for and what the client may hold (`ScopeResolver.grant`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from loguru import logger

from app.audit.note import SecurityEvents
from app.errors import InsufficientScope
from app.policy.snapshot import PolicySnapshot
from app.security.fingerprint import fingerprint_hash
from app.tokens import jose
from app.tokens.claims import build_claims
from app.tokens.keys import KeyRing
from app.tokens.metrics import TokenMetrics
from app.tokens.models import UserRecord, client_subject
from app.tokens.ports import RefreshTokenStore
from app.tokens.refresh_tokens import new_refresh_token
from app.tokens.scopes import ScopeResolver


class PolicySource(Protocol):
    @property
    def snapshot(self) -> PolicySnapshot: ...


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
    metrics: TokenMetrics | None = None
    clock: Callable[[], float] = field(default=time.time)
    events: SecurityEvents | None = None  # the audit trail of issued and refreshed tokens

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
        refresh_raw, refresh_record = new_refresh_token(
            user_id=user.id,
            client_id=client.client_id,
            family=family,
            scope=" ".join(requested or ()),
            version=version,
            fingerprint_hash=fpt,
            now=datetime.fromtimestamp(self.clock(), UTC),
            ttl=self.config.refresh_ttl,
        )
        issued = await self.access(
            subject=user.username,
            is_admin=user.is_admin,
            client=client,
            version=version,
            requested=requested,
            fpt=fpt,
            session=family,
        )
        await self.refresh_tokens.add(refresh_record)
        self.log(issued, user_id=user.id, ip=ip, grant=grant, refresh_family=family)
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
        issued = await self.access(
            subject=client_subject(client.client_id),
            is_admin=False,
            client=client,
            version="v2",
            requested=requested,
            fpt=None,
            session=None,
            omit_empty_scope=True,
        )
        self.log(issued, user_id=None, ip=ip, grant="client_credentials", refresh_family=None)
        return issued

    # -- building blocks ---------------------------------------------------------------
    async def access(
        self,
        *,
        subject: str,
        is_admin: bool,
        client: ClientContext,
        version: str,
        requested: Sequence[str] | None,
        fpt: str | None,
        session: str | None,
        omit_empty_scope: bool = False,
    ) -> IssuedTokens:
        started = time.perf_counter()
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
            if omit_empty_scope and not scope:
                scope = None  # no `"scope": ""`: nothing granted reads as no scope claim
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
        if self.metrics is not None:
            self.metrics.issue_seconds.labels(version=version).observe(
                time.perf_counter() - started
            )
        return IssuedTokens(token, self.config.access_ttl, claims)

    def log(
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
        if self.events is not None:
            self.events.emit(
                "token.refreshed" if grant == "refresh_token" else "token.issued",
                actor=claims["sub"],
                target=claims["sub"],
                details={
                    "jti": claims["jti"],
                    "session_id": claims.get("sid"),
                    "client_id": claims["client_id"],
                    "grant": grant,
                    "version": version,
                    "refresh_token": refresh_family is not None or grant == "refresh_token",
                    "address": ip,
                },
            )
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
