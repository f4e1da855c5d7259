"""Rate limits on credential use (the `limits` library, moving windows).

Login: `rate_limit_login_ip` failed attempts per client address (per account, failures
back off instead: `app.security.login_guard`); refresh: `rate_limit_refresh` per user;
permission checks per authenticated caller, each check of a batch counted: end users (a token
issued to a person) get `rate_limit_check`, services (client-credentials tokens and API keys,
which call a PDP in bulk) get `rate_limit_check_service`.
Windows live in Redis when one is configured (`app.adapters.redis.rate_limits` builds that
binding), so every instance and every worker counts together; if Redis fails, counting falls
back to this process (never a 5xx, never unlimited), with sliding-window counters for checks
(two numbers per caller, whatever the volume). Checks are counted through a `CheckCharger`
(`app.adapters.redis.check_budget.CheckBudget`): at most one Redis round trip per caller per
`check_window` seconds, shared with the request's revocation lookup.
On a Redis Cluster the windows live in the `limits` library's cluster storage (its own
cluster client: `limits` cannot share one); each window is one key, so its Lua scripts run on
the node serving that key.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from loguru import logger

from app.errors import RateLimited


class OverLimit(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"over the limit; retry after {retry_after} s")
        self.retry_after = retry_after


class CheckCharger(Protocol):
    """A caller's check budget shared between instances (`app.adapters.redis.check_budget`)."""

    async def charge(self, caller: str, cost: int) -> None:
        """Count `cost` checks; raise `OverLimit` past the limit, anything else when the
        shared store failed (counting then falls back to this process)."""
        ...


@dataclass(frozen=True)
class Limit:
    name: str
    text: str
    item: RateLimitItem

    @classmethod
    def of(cls, name: str, text: str) -> Limit:
        item = parse(text)
        return cls(name, text, item)

    @property
    def window_seconds(self) -> int:
        return int(self.item.get_expiry())


class RateLimits:
    def __init__(
        self,
        *,
        login_ip: str,
        login_user: str,
        refresh: str,
        check: str = "1000/minute",
        check_service: str = "10000000/minute",
        shared: MovingWindowRateLimiter | None = None,
        check_budgets: Callable[[Limit, bool], CheckCharger] | None = None,
        closer: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`shared` counts in a store every instance sees (Redis); `check_budgets` makes the
        shared check budget of a limit (`(limit, service)`). Without them, counting stays in
        this process."""
        self.login_ip = Limit.of("login_ip", login_ip)
        self.login_user = Limit.of("login_user", login_user)
        self.refresh_user = Limit.of("refresh_user", refresh)
        self.check_caller = Limit.of("check_caller", check)
        self.check_service = Limit.of("check_service", check_service)
        memory = MemoryStorage()
        self._memory = MovingWindowRateLimiter(memory)
        self._memory_counters = SlidingWindowCounterRateLimiter(memory)
        self._shared = shared
        self._closer = closer
        self._budgets: dict[bool, CheckCharger] = {}
        if check_budgets is not None:
            for service, limit in ((False, self.check_caller), (True, self.check_service)):
                self._budgets[service] = check_budgets(limit, service)

    async def close(self) -> None:
        """Release what the shared store holds for itself (`closer`; e.g. the cluster client
        the `limits` storage made); a failure to close is not the caller's problem."""
        if self._closer is not None:
            with contextlib.suppress(Exception):
                await self._closer()

    async def login(self, *, ip: str | None, username: str) -> None:
        """Refuse a login attempt from an address over its failure limit (RATE_001).
        Only failures are counted (`login_failed`); per-account limits are a back-off
        (`app.security.login_guard`), not a window a sprayer can fill."""
        await self.check_open(self.login_ip, ip or "unknown")

    async def login_failed(self, *, ip: str | None) -> None:
        await self._count(self.login_ip, ip or "unknown", 1)

    async def check_open(self, limit: Limit, identifier: str) -> None:
        limiter = self._shared or self._memory
        try:
            allowed = await limiter.test(limit.item, limit.name, identifier)
        except Exception as exc:
            logger.warning("rate_limit.storage_unavailable", error=type(exc).__name__)
            limiter = self._memory
            allowed = await limiter.test(limit.item, limit.name, identifier)
        if not allowed:
            await self._refuse(limiter, limit, identifier)

    async def refresh(self, *, user_id: str) -> None:
        await self.hit(self.refresh_user, user_id)

    def check_limit(self, *, service: bool) -> Limit:
        """The check limit of a caller: services (client credentials, API keys) or end users."""
        return self.check_service if service else self.check_caller

    async def checks(self, *, caller: str, count: int = 1, service: bool = False) -> None:
        limit = self.check_limit(service=service)
        budget = self._budgets.get(service)
        if budget is not None:
            try:
                await budget.charge(caller, count)
                return
            except OverLimit as over:
                raise self._refusal(limit, over.retry_after) from None
            except Exception as exc:
                logger.warning("rate_limit.storage_unavailable", error=type(exc).__name__)
        if not await self._memory_counters.hit(limit.item, limit.name, caller, cost=count):
            retry_after = await self._retry_after(self._memory_counters, limit, caller)
            raise self._refusal(limit, retry_after) from None

    async def hit(self, limit: Limit, identifier: str, *, cost: int = 1) -> None:
        """Count `cost` uses; raise `RateLimited` (RATE_001) when over the limit."""
        allowed, limiter = await self._count(limit, identifier, cost)
        if not allowed:
            await self._refuse(limiter, limit, identifier)

    async def _count(
        self, limit: Limit, identifier: str, cost: int
    ) -> tuple[bool, MovingWindowRateLimiter]:
        limiter = self._shared or self._memory
        try:
            allowed = await limiter.hit(limit.item, limit.name, identifier, cost=cost)
        except Exception as exc:
            logger.warning("rate_limit.storage_unavailable", error=type(exc).__name__)
            limiter = self._memory
            allowed = await limiter.hit(limit.item, limit.name, identifier, cost=cost)
        return allowed, limiter

    async def _refuse(
        self, limiter: MovingWindowRateLimiter, limit: Limit, identifier: str
    ) -> None:
        retry_after = await self._retry_after(limiter, limit, identifier)
        raise self._refusal(limit, retry_after)

    @staticmethod
    def _refusal(limit: Limit, retry_after: int) -> RateLimited:
        logger.warning("rate_limit.exceeded", limit=limit.name, rule=limit.text)
        return RateLimited(
            f"Too many requests: the limit is {limit.text}",
            details={"limit": limit.text, "window": limit.window_seconds, "name": limit.name},
            retry_after=retry_after,
        )

    @staticmethod
    async def _retry_after(
        limiter: MovingWindowRateLimiter | SlidingWindowCounterRateLimiter,
        limit: Limit,
        identifier: str,
    ) -> int:
        try:
            stats = await limiter.get_window_stats(limit.item, limit.name, identifier)
            return max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:
            return limit.window_seconds
