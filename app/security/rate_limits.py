"""Rate limits on credential use (the `limits` library, moving windows).

Login: `rate_limit_login_ip` failed attempts per client address (per account, failures
back off instead: `app.security.login_guard`); refresh: `rate_limit_refresh` per user;
permission checks: `rate_limit_check` per authenticated caller, each check of a batch counted.
Windows live in Redis when one is configured, so every instance counts together; if Redis
fails, counting falls back to this process (never a 5xx, and never unlimited). Checks are
counted through `CheckBudget`: at most one Redis round trip per caller per `check_window`
seconds, shared with the request's revocation lookup.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from loguru import logger
from redis.asyncio import Redis

from app.errors import RateLimited
from app.security.check_budget import CheckBudget, OverLimit
from app.store.redis_batch import RedisBatcher


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
        redis: Redis | None = None,
        redis_url: str | None = None,
        prefix: str = "oms-auth:v1",
        batcher: RedisBatcher | None = None,
        check_window: float = 1.0,
    ) -> None:
        self.login_ip = Limit.of("login_ip", login_ip)
        self.login_user = Limit.of("login_user", login_user)
        self.refresh_user = Limit.of("refresh_user", refresh)
        self.check_caller = Limit.of("check_caller", check)
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        if redis is not None and redis_url is not None:
            storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=f"{prefix}:rate",
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
            self._shared = MovingWindowRateLimiter(storage)
        self._budget: CheckBudget | None = None
        if redis is not None:
            self._budget = CheckBudget(
                batcher or RedisBatcher(redis),
                amount=self.check_caller.item.amount,
                period_seconds=self.check_caller.window_seconds,
                prefix=prefix,
                window=check_window,
            )

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

    async def clear_login(self, *, username: str) -> None:
        """Forget the username's failed-login window (an administrator unlocks the user)."""
        for limiter in (self._shared, self._memory):
            if limiter is None:
                continue
            try:
                await limiter.clear(self.login_user.item, self.login_user.name, username.casefold())
            except Exception as exc:
                logger.warning("rate_limit.storage_unavailable", error=type(exc).__name__)

    async def refresh(self, *, user_id: str) -> None:
        await self.hit(self.refresh_user, user_id)

    async def checks(self, *, caller: str, count: int = 1) -> None:
        if self._budget is None:
            await self.hit(self.check_caller, caller, cost=count)
            return
        try:
            await self._budget.charge(caller, count)
        except OverLimit as over:
            raise self._refusal(self.check_caller, over.retry_after) from None
        except Exception as exc:
            logger.warning("rate_limit.storage_unavailable", error=type(exc).__name__)
            if not await self._memory.hit(
                self.check_caller.item, "check_caller", caller, cost=count
            ):
                raise self._refusal(self.check_caller, self.check_caller.window_seconds) from None

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
            headers={"Retry-After": str(retry_after)},
        )

    @staticmethod
    async def _retry_after(limiter: MovingWindowRateLimiter, limit: Limit, identifier: str) -> int:
        try:
            stats = await limiter.get_window_stats(limit.item, limit.name, identifier)
            return max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:
            return limit.window_seconds
