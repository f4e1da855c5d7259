"""Who may log in: password checks with equal timing, rate limits, audit events.

Unknown user, wrong password and disabled user all answer AUTH_001 after the same argon2
verification (a dummy hash for unknown users), so neither the answer nor its timing tells an
attacker which usernames exist. Rate limits are counted before the password is checked, so a
brute force cannot even burn our CPU beyond the limit.
"""

from __future__ import annotations

from typing import Protocol

from loguru import logger

from app.audit.note import SecurityEvents, mask_username
from app.errors import AuthenticationFailed
from app.security.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from app.tokens.metrics import TokenMetrics
from app.tokens.models import UserRecord
from app.tokens.ports import UserStore


class LoginLimiter(Protocol):
    async def login(self, *, ip: str | None, username: str) -> None: ...


class LoginObserver(Protocol):
    def login_failed(self, username: str, ip: str | None) -> None: ...


class Accounts:
    # Set by the composition root: the audit trail of failed logins and the detector.
    events: SecurityEvents | None = None
    observer: LoginObserver | None = None

    def __init__(
        self,
        users: UserStore,
        hasher: PasswordHasher,
        *,
        limiter: LoginLimiter | None = None,
        metrics: TokenMetrics | None = None,
    ) -> None:
        self.users = users
        self.hasher = hasher
        self.limiter = limiter
        self.metrics = metrics

    async def authenticate(self, username: str, password: str, *, ip: str | None) -> UserRecord:
        """The user, or AUTH_001 (RATE_001 when over a login limit)."""
        if self.limiter is not None:
            await self.limiter.login(ip=ip, username=username)
        user = await self.users.by_username(username) if username else None
        acceptable = 0 < len(password) <= MAX_PASSWORD_LENGTH
        stored = user.password_hash if user is not None and acceptable else None
        verification = await self.hasher.verify(stored, password[:MAX_PASSWORD_LENGTH])
        if user is None or not verification.ok or user.disabled:
            reason = (
                "unknown_user"
                if user is None
                else "bad_password"
                if not verification.ok
                else "disabled"
            )
            self._count("failed")
            logger.warning("auth.login.failed", username=username, reason=reason, ip=ip)
            self._failed(username, reason, ip)
            raise AuthenticationFailed("Invalid username or password")
        if verification.needs_rehash:
            new_hash = await self.hasher.hash(password)
            await self.users.set_password_hash(user_id=user.id, password_hash=new_hash)
        self._count("ok")
        return user

    def _failed(self, username: str, reason: str, ip: str | None) -> None:
        masked = mask_username(username)
        if self.events is not None:
            self.events.emit(
                "auth.login.failed",
                actor=masked,
                target=f"user:{masked}",
                details={"username": masked, "reason": reason, "address": ip},
            )
        if self.observer is not None:
            self.observer.login_failed(username, ip)

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.logins.labels(result=result).inc()
