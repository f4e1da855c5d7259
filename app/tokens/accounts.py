"""Who may log in: password checks with equal timing, rate limits, audit events.

Unknown user, wrong password and disabled user all answer AUTH_001 after the same argon2
verification (a dummy hash for unknown users), so neither the answer nor its timing tells an
attacker which usernames exist. Rate limits are counted before the password is checked, so a
brute force cannot even burn our CPU beyond the limit. Only failures are counted.
"""

from __future__ import annotations

from typing import Protocol

from loguru import logger

from app.errors import AuthenticationFailed
from app.security.login_guard import LoginGuard
from app.security.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from app.tokens.metrics import TokenMetrics
from app.tokens.models import UserRecord
from app.tokens.ports import UserStore


class LoginLimiter(Protocol):
    async def login(self, *, ip: str | None, username: str) -> None: ...
    async def login_failed(self, *, ip: str | None) -> None: ...


class Accounts:
    def __init__(
        self,
        users: UserStore,
        hasher: PasswordHasher,
        *,
        limiter: LoginLimiter | None = None,
        metrics: TokenMetrics | None = None,
        guard: LoginGuard | None = None,
    ) -> None:
        self.users = users
        self.hasher = hasher
        self.limiter = limiter
        self.metrics = metrics
        self.guard = guard

    async def authenticate(
        self, username: str, password: str, *, ip: str | None, fingerprint: str | None = None
    ) -> UserRecord:
        """The user, or AUTH_001 (RATE_001 when over the address limit or while the account
        backs off; see `app.security.login_guard`)."""
        if self.limiter is not None:
            await self.limiter.login(ip=ip, username=username)
        bucket = ""
        if self.guard is not None:
            bucket = await self.guard.bucket(username, ip=ip, fingerprint=fingerprint)
            await self.guard.before(bucket)
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
            if self.limiter is not None:
                await self.limiter.login_failed(ip=ip)
            if self.guard is not None:
                await self.guard.failed(bucket, username=username, ip=ip)
            raise AuthenticationFailed("Invalid username or password")
        if verification.needs_rehash:
            new_hash = await self.hasher.hash(password)
            await self.users.set_password_hash(user_id=user.id, password_hash=new_hash)
        if self.guard is not None:
            await self.guard.succeeded(bucket, username=username, ip=ip, fingerprint=fingerprint)
        self._count("ok")
        return user

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.logins.labels(result=result).inc()
