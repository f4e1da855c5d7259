"""Who may log in: password checks with equal timing, rate limits, audit events.

Unknown user, wrong password and disabled user all answer AUTH_001 after the same argon2
verification (a dummy hash for unknown users), so neither the answer nor its timing tells an
attacker which usernames exist. Rate limits are counted before the password is checked, so a
brute force cannot even burn our CPU beyond the limit. Only failures are counted.

Hashing is admission-controlled (see `app.security.passwords`): a login beyond the bounded
queue gets 503 `SYS_003` at once. A hash whose parameters are out of date is upgraded after
the login has answered, in the background, and only when a hashing slot is free right then,
so a cost change never slows logins down or adds to a storm.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from loguru import logger

from app.audit.note import SecurityEvents, mask_username
from app.errors import AuthenticationFailed
from app.security.login_guard import LoginGuard
from app.security.passwords import MAX_PASSWORD_LENGTH, PasswordHasher, StillWanted
from app.tokens.metrics import TokenMetrics
from app.tokens.models import UserRecord
from app.tokens.ports import UserStore


class LoginLimiter(Protocol):
    async def login(self, *, ip: str | None, username: str) -> None: ...
    async def login_failed(self, *, ip: str | None) -> None: ...


class LoginObserver(Protocol):
    def login_failed(self, username: str, ip: str | None) -> None: ...


class Accounts:
    def __init__(
        self,
        users: UserStore,
        hasher: PasswordHasher,
        *,
        limiter: LoginLimiter | None = None,
        metrics: TokenMetrics | None = None,
        guard: LoginGuard | None = None,
        events: SecurityEvents | None = None,
        observer: LoginObserver | None = None,
    ) -> None:
        self.users = users
        self.events = events  # the audit trail of failed logins
        self.observer = observer  # the detector of failure bursts
        self.hasher = hasher
        self.limiter = limiter
        self.metrics = metrics
        self.guard = guard
        self._upgrades: set[asyncio.Task[None]] = set()
        self._upgrading: set[str] = set()  # user ids with an upgrade in flight

    async def authenticate(
        self,
        username: str,
        password: str,
        *,
        ip: str | None,
        fingerprint: str | None = None,
        still_wanted: StillWanted | None = None,
    ) -> UserRecord:
        """The user, or AUTH_001 (RATE_001 over the address limit or while the account backs
        off, see `app.security.login_guard`; SYS_003 when overloaded)."""
        # A login the pool would refuse costs no lookups; an admitted one keeps its place.
        with self.hasher.reservation() as place:
            if self.limiter is not None:
                await self.limiter.login(ip=ip, username=username)
            bucket = ""
            if self.guard is not None:
                bucket = await self.guard.bucket(username, ip=ip, fingerprint=fingerprint)
                await self.guard.before(bucket)
            user = await self.users.by_username(username) if username else None
            acceptable = 0 < len(password) <= MAX_PASSWORD_LENGTH
            stored = user.password_hash if user is not None and acceptable else None
            verification = await self.hasher.verify(
                stored,
                password[:MAX_PASSWORD_LENGTH],
                still_wanted=still_wanted,
                reservation=place,
            )
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
            if self.limiter is not None:
                await self.limiter.login_failed(ip=ip)
            if self.guard is not None:
                await self.guard.failed(bucket, username=username, ip=ip)
            raise AuthenticationFailed("Invalid username or password")
        if verification.needs_rehash:
            self._schedule_upgrade(user, password)
        if self.guard is not None:
            await self.guard.succeeded(bucket, username=username, ip=ip, fingerprint=fingerprint)
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

    def _schedule_upgrade(self, user: UserRecord, password: str) -> None:
        if user.id in self._upgrading or len(self._upgrades) >= self.hasher.workers:
            return  # one per user, and never more than the pool could run at once
        self._upgrading.add(user.id)
        task = asyncio.create_task(self._upgrade(user, password))
        self._upgrades.add(task)
        task.add_done_callback(self._upgrades.discard)

    async def _upgrade(self, user: UserRecord, password: str) -> None:
        try:
            new_hash = await self.hasher.hash_if_idle(password)
            if new_hash is None:
                return  # busy: the next login of this user tries again
            await self.users.set_password_hash(user_id=user.id, password_hash=new_hash)
            logger.info("auth.password.rehashed", user_id=user.id)
        except Exception as exc:
            logger.warning("auth.password.rehash_failed", user_id=user.id, error=type(exc).__name__)
        finally:
            self._upgrading.discard(user.id)

    async def close(self) -> None:
        """Stop hash upgrades in flight (they are redone at the user's next login)."""
        for task in list(self._upgrades):
            task.cancel()
        for task in list(self._upgrades):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.logins.labels(result=result).inc()
