"""Rate-limit counters in Redis, shared by every instance and worker.

`redis_rate_limits` builds `app.security.rate_limits.RateLimits` with the `limits` library's
Redis storage (moving windows, on the instance's connection pool; on a Redis Cluster, the
`limits` cluster storage with its own cluster client, which `RateLimits.close` closes) and a
`CheckBudget` per check limit; without Redis it builds the in-process limits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from app.adapters.redis.batch import RedisBatcher
from app.adapters.redis.check_budget import CheckBudget
from app.adapters.redis.client import RedisClient, limits_storage_uri
from app.security.rate_limits import CheckCharger, Limit, RateLimits


def redis_rate_limits(
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
) -> RateLimits:
    shared: MovingWindowRateLimiter | None = None
    closer: Callable[[], Awaitable[None]] | None = None
    if isinstance(redis, Redis) and redis_url is not None:
        storage = RedisStorage(
            limits_storage_uri(redis_url),
            implementation="redispy",
            key_prefix=f"{prefix}:rate",
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        shared = MovingWindowRateLimiter(storage)
    elif redis is not None and redis_url is not None:
        cluster_storage = RedisClusterStorage(
            limits_storage_uri(redis_url),
            implementation="redispy",
            key_prefix=f"{prefix}:rate",
            **(cluster_options or {}),
        )
        shared = MovingWindowRateLimiter(cluster_storage)

        async def close_cluster_client() -> None:
            client = getattr(cluster_storage.bridge, "storage", None)
            if isinstance(client, RedisCluster):
                await client.aclose()

        closer = close_cluster_client
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
        closer=closer,
    )
