"""Rate-limit counters in Redis, shared by every instance and worker.

`redis_rate_limits` builds `app.security.rate_limits.RateLimits` with the `limits` library's
Redis storage (moving windows, on the instance's connection pool) and a `CheckBudget` per check
limit; without Redis it builds the in-process limits.
"""

from __future__ import annotations

from collections.abc import Callable

from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from app.adapters.redis.batch import RedisBatcher
from app.adapters.redis.check_budget import CheckBudget
from app.security.rate_limits import CheckCharger, Limit, RateLimits


def redis_rate_limits(
    *,
    login_ip: str,
    login_user: str,
    refresh: str,
    check: str = "1000/minute",
    check_service: str = "10000000/minute",
    redis: Redis | None = None,
    redis_url: str | None = None,
    prefix: str = "oms-auth:v1",
    batcher: RedisBatcher | None = None,
    check_window: float = 1.0,
) -> RateLimits:
    shared: MovingWindowRateLimiter | None = None
    if redis is not None and redis_url is not None:
        storage = RedisStorage(
            "async+" + redis_url,
            implementation="redispy",
            key_prefix=f"{prefix}:rate",
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        shared = MovingWindowRateLimiter(storage)
    budgets: Callable[[Limit, bool], CheckCharger] | None = None
    if redis is not None:
        pipeline = batcher or RedisBatcher(redis)

        def budget(limit: Limit, service: bool) -> CheckCharger:
            return CheckBudget(
                pipeline,
                amount=limit.item.amount,
                period_seconds=limit.window_seconds,
                prefix=f"{prefix}:service" if service else prefix,
                window=check_window,
            )

        budgets = budget
    return RateLimits(
        login_ip=login_ip,
        login_user=login_user,
        refresh=refresh,
        check=check,
        check_service=check_service,
        shared=shared,
        check_budgets=budgets,
    )
