"""Brute force without a lock-out weapon: per-account back-off that a victim walks past.

Policy (see README "Brute force"):

- Only failures count. A success clears the bucket it was counted in.
- Each account has a failure bucket (canonical username, so `Victor` and `victor` are one;
  unknown usernames too, so the answer reveals nothing). After `free_failures` failures,
  each further attempt must wait `base_delay * 2^(failures - free_failures)` seconds (at
  most `max_delay`) after the last failure; an attempt inside the wait is refused with 429
  `RATE_001` and `Retry-After`, is not verified and is not counted, so a sprayer cannot
  stretch the wait. Failures are forgotten `window` seconds after the last one.
- A source that logged in successfully before (the client address, or the device
  fingerprint sent in `X-Device-Fingerprint`) is remembered for `known_ttl`; attempts from
  a known source use a bucket of their own for that account, so failures from elsewhere
  never slow the real user down at their usual address or device.
- Every `alert_every` failures of one account raise a `login_burst` security alert (audit
  `alert.login_burst`, metric `oms_auth_security_alerts_total{kind="login_burst"}`).
- `unlock(username)` (CLI `oms-auth users unlock NAME`) clears every bucket of the account.

Buckets live in Redis when one is configured (every instance shares them), else in process.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from loguru import logger

from app.audit.note import SecurityAlert
from app.errors import RateLimited
from app.security.names import canonical_name


@dataclass(frozen=True)
class BackoffPolicy:
    free_failures: int = 5
    base_delay: float = 1.0
    max_delay: float = 900.0
    window: int = 3600
    known_ttl: int = 30 * 86_400
    alert_every: int = 20

    def delay(self, failures: int) -> float:
        if failures < self.free_failures:
            return 0.0
        exponent = min(failures - self.free_failures, 30)
        return float(min(self.max_delay, self.base_delay * 2**exponent))


class FailureStore(Protocol):
    async def failures(self, bucket: str) -> tuple[int, float]: ...
    async def add_failure(self, bucket: str, now: float, ttl: int) -> int: ...
    async def clear(self, bucket: str) -> None: ...
    async def clear_account(self, account: str) -> int: ...
    async def remember(self, account: str, source: str, ttl: int) -> None: ...
    async def is_known(self, account: str, source: str) -> bool: ...


AlertSink = Callable[[SecurityAlert, str], Awaitable[None]]


def _source_id(kind: str, value: str) -> str:
    return kind + ":" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


class LoginGuard:
    def __init__(
        self,
        store: FailureStore,
        policy: BackoffPolicy | None = None,
        *,
        alert: AlertSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.policy = policy or BackoffPolicy()
        self.alert = alert
        self.clock = clock

    async def bucket(self, username: str, *, ip: str | None, fingerprint: str | None) -> str:
        """The bucket this attempt counts in: the account's own, or that of a known source."""
        account = canonical_name(username)
        for source in self._sources(ip, fingerprint):
            if await self.store.is_known(account, source):
                return f"{account}\x1f{source}"
        return account

    async def before(self, bucket: str) -> None:
        """Refuse (RATE_001, not counted) while the bucket is backing off."""
        count, last = await self.store.failures(bucket)
        wait = self.policy.delay(count) - (self.clock() - last)
        if wait > 0:
            logger.warning("auth.login.backoff", failures=count, wait_s=round(wait, 1))
            raise RateLimited(
                "Too many failed logins for this account: try again later",
                details={"reason": "account_backoff", "retry_after": math.ceil(wait)},
                retry_after=math.ceil(wait),
            )

    async def failed(self, bucket: str, *, username: str, ip: str | None) -> None:
        count = await self.store.add_failure(bucket, self.clock(), self.policy.window)
        every = self.policy.alert_every
        if every > 0 and count % every == 0 and self.alert is not None:
            alert = SecurityAlert(
                kind="login_burst",
                actor=f"user:{canonical_name(username)}",
                details={"failures": count, "ip": ip, "known_source": "\x1f" in bucket},
            )
            try:
                await self.alert(alert, f"user:{canonical_name(username)}")
            except Exception as exc:  # an alert must never turn a 401 into a 500
                logger.error("auth.login.alert_failed", error=type(exc).__name__)

    async def succeeded(
        self, bucket: str, *, username: str, ip: str | None, fingerprint: str | None
    ) -> None:
        await self.store.clear(bucket)
        account = canonical_name(username)
        for source in self._sources(ip, fingerprint):
            await self.store.remember(account, source, self.policy.known_ttl)

    async def unlock(self, username: str) -> int:
        """Forget every failure of the account; returns how many buckets were cleared."""
        return await self.store.clear_account(canonical_name(username))

    @staticmethod
    def _sources(ip: str | None, fingerprint: str | None) -> list[str]:
        out = []
        if fingerprint:
            out.append(_source_id("dev", fingerprint))
        if ip:
            out.append(_source_id("ip", ip))
        return out


AuditWriter = Callable[[str, str, dict[str, object]], Awaitable[None]]  # action, target, details


async def unlock_account(
    guard: LoginGuard, username: str, *, audit: AuditWriter | None = None
) -> int:
    """Clear an account's login failures (every bucket) and audit `user.unlocked`; the CLI
    (`oms-auth users unlock NAME`) and the admin API call this. Returns buckets cleared."""
    cleared = await guard.unlock(username)
    target = f"user:{canonical_name(username)}"
    if audit is not None:
        await audit("user.unlocked", target, {"buckets_cleared": cleared})
    logger.info("auth.user.unlocked", target=target, buckets_cleared=cleared)
    return cleared


class MemoryFailureStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._failures: dict[str, tuple[int, float, float]] = {}  # count, last, expires
        self._known: dict[tuple[str, str], float] = {}

    async def failures(self, bucket: str) -> tuple[int, float]:
        entry = self._failures.get(bucket)
        if entry is None or entry[2] <= self.clock():
            return 0, 0.0
        return entry[0], entry[1]

    async def add_failure(self, bucket: str, now: float, ttl: int) -> int:
        count, _ = await self.failures(bucket)
        self._failures[bucket] = (count + 1, now, now + ttl)
        if len(self._failures) > 100_000:  # bounded: drop the oldest
            self._failures.pop(next(iter(self._failures)))
        return count + 1

    async def clear(self, bucket: str) -> None:
        self._failures.pop(bucket, None)

    async def clear_account(self, account: str) -> int:
        doomed = [b for b in self._failures if b == account or b.startswith(account + "\x1f")]
        for bucket in doomed:
            del self._failures[bucket]
        return len(doomed)

    async def remember(self, account: str, source: str, ttl: int) -> None:
        self._known[(account, source)] = self.clock() + ttl
        if len(self._known) > 100_000:
            self._known.pop(next(iter(self._known)))

    async def is_known(self, account: str, source: str) -> bool:
        return self._known.get((account, source), 0.0) > self.clock()
