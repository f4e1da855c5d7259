"""`TokenService`: the one object the HTTP layer, the OAuth server and the CLI talk to."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from app.audit.note import AuditNote, SecurityEvents
from app.security.passwords import StillWanted
from app.tokens.accounts import Accounts
from app.tokens.claims import AccessClaims
from app.tokens.issuer import ClientContext, IssuedTokens, TokenIssuer
from app.tokens.keys import KeyRing
from app.tokens.models import RevocationState, UserRecord, client_subject
from app.tokens.oauth.clients import AccessTokenHandle, RefreshTokenHandle
from app.tokens.ports import ClientStore, RefreshTokenStore, UserStore
from app.tokens.refresh_tokens import hash_refresh_token
from app.tokens.revocation import Revocations
from app.tokens.rotation import RefreshRotation
from app.tokens.staleness import PermissionCutoff
from app.tokens.validator import TokenValidator


@dataclass
class TokenService:
    first_party: ClientContext
    accounts: Accounts
    issuer: TokenIssuer
    rotation: RefreshRotation
    validator: TokenValidator
    revocations: Revocations
    refresh_tokens: RefreshTokenStore
    users: UserStore
    cutoff: PermissionCutoff
    keys: KeyRing
    clock: Callable[[], float] = field(default=time.time)
    events: SecurityEvents | None = None  # the audit trail of revocations

    def _revoked(self, subject: str | None, details: dict[str, Any]) -> None:
        if self.events is not None:
            who = subject or "unknown"
            self.events.emit("token.revoked", actor=who, target=who, details=details)

    @property
    def issuer_url(self) -> str:
        return self.issuer.config.issuer

    # -- the login API -------------------------------------------------------------------
    async def login(
        self,
        username: str,
        password: str,
        *,
        version: str,
        requested: Sequence[str] | None,
        fingerprint: str | None,
        ip: str | None,
        still_wanted: StillWanted | None = None,
    ) -> IssuedTokens:
        user = await self.accounts.authenticate(
            username, password, ip=ip, fingerprint=fingerprint, still_wanted=still_wanted
        )
        return await self.issuer.for_user(
            user,
            client=self.first_party,
            version=version,
            requested=requested,
            fingerprint=fingerprint,
            ip=ip,
            grant="password",
        )

    async def refresh(self, raw: str, *, fingerprint: str | None, ip: str | None) -> IssuedTokens:
        return await self.rotation.refresh(
            raw, client=self.first_party, requested=None, fingerprint=fingerprint, ip=ip
        )

    async def logout(
        self, claims: AccessClaims, *, refresh_token: str | None, ip: str | None
    ) -> None:
        """Revoke the presented access token and its whole session (refresh family)."""
        sessions = [claims.session] if claims.session else []
        if refresh_token:
            record = await self.refresh_tokens.find(hash_refresh_token(refresh_token))
            if record is not None and record.client_id == claims.client_id:
                sessions.append(record.family_id)
        now = datetime.fromtimestamp(self.clock(), UTC)
        for family in dict.fromkeys(sessions):
            await self.refresh_tokens.revoke_family(family_id=family, at=now)
        await self.revocations.revoke(
            subject=claims.subject,
            reason="logout",
            jtis=[(claims.jti, float(claims.expires_at))],
            sessions=list(dict.fromkeys(sessions)),
        )
        logger.info(
            "auth.token.revoked",
            reason="logout",
            subject=claims.subject,
            jti=claims.jti,
            session_count=len(set(sessions)),
            client_id=claims.client_id,
            ip=ip,
        )
        self._revoked(
            claims.subject,
            {
                "reason": "logout",
                "jti": claims.jti,
                "sessions": list(dict.fromkeys(sessions)),
                "client_id": claims.client_id,
                "address": ip,
            },
        )

    # -- RFC 7009 / 7662 ------------------------------------------------------------------
    async def inspect_access(
        self, token: str, *, fingerprint: str | None, strict: bool
    ) -> AccessClaims:
        """Verify an access token; `strict` adds revocation and (when a fingerprint is
        given) device checks, as introspection needs."""
        return await self.validator.validate(
            token,
            fingerprint=fingerprint,
            check_device=strict and fingerprint is not None,
            check_revocation=strict,
        )

    async def find_refresh(self, raw: str) -> RefreshTokenHandle | None:
        record = await self.refresh_tokens.find(hash_refresh_token(raw))
        if record is None:
            return None
        user = await self.users.by_id(record.user_id) if record.user_id else None
        live = (
            record.revoked_at is None
            and record.rotated_at is None
            and record.expires_at.timestamp() > self.clock()
            and user is not None
            and not user.disabled
        )
        return RefreshTokenHandle(record, user.username if user else None, live)

    async def revoke(
        self, token: AccessTokenHandle | RefreshTokenHandle, *, by_client: str
    ) -> None:
        if isinstance(token, AccessTokenHandle):
            c = token.claims
            await self.revocations.revoke(
                subject=c.subject, reason="rfc7009", jtis=[(c.jti, float(c.expires_at))]
            )
            logger.info(
                "auth.token.revoked",
                reason="rfc7009",
                token_type="access",  # noqa: S106
                subject=c.subject,
                jti=c.jti,
                client_id=by_client,
            )
            self._revoked(
                c.subject,
                {"reason": "rfc7009", "token_type": "access", "jti": c.jti, "by": by_client},
            )
            return
        family = token.record.family_id
        now = datetime.fromtimestamp(self.clock(), UTC)
        await self.refresh_tokens.revoke_family(family_id=family, at=now)
        await self.revocations.revoke(subject=token.username, reason="rfc7009", sessions=[family])
        logger.info(
            "auth.token.revoked",
            reason="rfc7009",
            token_type="refresh",  # noqa: S106
            subject=token.username,
            session_id=family,
            client_id=by_client,
        )
        self._revoked(
            token.username,
            {"reason": "rfc7009", "token_type": "refresh", "session_id": family, "by": by_client},
        )

    # -- administration ------------------------------------------------------------------
    async def disable_user(self, username: str) -> UserRecord | None:
        return await disable_user(
            username,
            users=self.users,
            refresh_tokens=self.refresh_tokens,
            revocations=self.revocations,
            clock=self.clock,
        )


async def disable_client(
    client_id: str,
    *,
    clients: ClientStore,
    revocations: Revocations,
    clock: Callable[[], float] = time.time,
    audit: AuditNote | None = None,
) -> bool:
    """Disable a client: it cannot authenticate any more, and every access token naming it
    (its own and those its users got through it) dies. Refresh tokens need the client to
    authenticate, so they die with it."""
    now = clock()
    if not await clients.disable(
        client_id=client_id, at=datetime.fromtimestamp(now, UTC), audit=audit
    ):
        return False
    await revocations.remember(
        RevocationState(valid_after={client_subject(client_id): int(now * 1000)})
    )
    logger.info("auth.client.disabled", client_id=client_id)
    return True


async def disable_user(
    username: str,
    *,
    users: UserStore,
    refresh_tokens: RefreshTokenStore,
    revocations: Revocations,
    clock: Callable[[], float] = time.time,
    audit: AuditNote | None = None,
) -> UserRecord | None:
    """Disable a user: no more logins or refreshes, and every token issued so far dies."""
    now = clock()
    at = datetime.fromtimestamp(now, UTC)
    user = await users.disable(username=username, at=at, audit=audit)
    if user is None:
        return None
    families = await refresh_tokens.revoke_user(user_id=user.id, at=at)
    await revocations.remember(RevocationState(valid_after={user.username: int(now * 1000)}))
    logger.info(
        "auth.user.disabled", user_id=user.id, username=username, session_count=len(families)
    )
    return user
