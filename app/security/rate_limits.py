"""Rate limits on credential use (the `limits` library, moving windows).

Login: `rate_limit_login_ip` failed attempts per client address (per account, failures
back off instead: `app.security.login_guard`); refresh: `rate_limit_refresh` per user;
permission checks per authenticated caller, each check of a batch counted: end users (a token
issued to a person) get `rate_limit_check`, services (client-credentials tokens and API keys,
which call a PDP in bulk) get `rate_limit_check_service`.
Windows live in Redis when one is configured, so every instance and every worker counts
together; if Redis fails, counting falls back to this process (never a 5xx, never unlimited),
with sliding-window counters for checks (two numbers per caller, whatever the volume). Checks are
counted through `CheckBudget`: at most one Redis round trip per caller per `check_window`
seconds, shared with the request's revocation lookup. On a Redis Cluster the windows live in
the `limits` library's cluster storage (its own cluster client: `limits` cannot share one);
each window is one key, so its Lua scripts run on the node serving that key.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from loguru import logger
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from app.errors import RateLimited
from app.security.check_budget import CheckBudget, OverLimit
from app.store.redis import RedisClient, limits_storage_uri
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
        check_service: str = "10000000/minute",
        redis: RedisClient | None = None,
        redis_url: str | None = None,
        cluster_options: dict[str, Any] | None = None,
        prefix: str = "oms-auth:v1",
        batcher: RedisBatcher | None = None,
        check_window: float = 1.0,
    ) -> None:
        self.login_ip = Limit.of("login_ip", login_ip)
        self.login_user = Limit.of("login_user", login_user)
        self.refresh_user = Limit.of("refresh_user", refresh)
        self.check_caller = Limit.of("check_caller", check)
        self.check_service = Limit.of("check_service", check_service)
        memory = MemoryStorage()
        self._memory = MovingWindowRateLimiter(memory)
        self._memory_counters = SlidingWindowCounterRateLimiter(memory)
        self._shared: MovingWindowRateLimiter | None = None
        self._cluster_storage: RedisClusterStorage | None = None
        if isinstance(redis, Redis) and redis_url is not None:
            storage = RedisStorage(
                limits_storage_uri(redis_url),
                implementation="redispy",
                key_prefix=f"{prefix}:rate",
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
            self._shared = MovingWindowRateLimiter(storage)
        elif redis is not None and redis_url is not None:
            self._cluster_storage = RedisClusterStorage(
                limits_storage_uri(redis_url),
                implementation="redispy",
                key_prefix=f"{prefix}:rate",
                **(cluster_options or {}),
            )
            self._shared = MovingWindowRateLimiter(self._cluster_storage)
        self._budgets: dict[bool, CheckBudget] = {}
        if redis is not None:
            shared = batcher or RedisBatcher(redis)
            for service, limit in ((False, self.check_caller), (True, self.check_service)):
                self._budgets[service] = CheckBudget(
                    shared,
                    amount=limit.item.amount,
                    period_seconds=limit.window_seconds,
                    prefix=f"{prefix}:service" if service else prefix,
                    window=check_window,
                )

    async def close(self) -> None:
        """Close the cluster client the `limits` storage made for itself (if any)."""
        client = getattr(self._cluster_storage and self._cluster_storage.bridge, "storage", None)
        if isinstance(client, RedisCluster):
            with contextlib.suppress(Exception):
                await client.aclose()

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
            headers={"Retry-After": str(retry_after)},
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
