"""The instance's Redis client (one pool shared by cache, revocation, pub/sub, rate limits).

`OMS_AUTH_REDIS_URL` names one server (`redis://`, `rediss://`, `unix://`) or a Sentinel-
managed primary: `redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`. With
Sentinel, the client asks the sentinels where the primary is and asks again when a connection
to it fails, so a failover costs the requests in flight a fallback (rate limits in process,
revocations from the database), never an error, and the next ones reach the new primary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff

from app.addresses import SENTINEL_SCHEME, parse_sentinel_url

if TYPE_CHECKING:
    from app.config import Settings


def make_redis(settings: Settings) -> Redis | None:
    """A lazily connecting client, or None when no Redis is configured.

    The pool is a `BlockingConnectionPool` of `OMS_AUTH_REDIS_POOL_SIZE` connections: when all
    are busy, a command waits up to `OMS_AUTH_REDIS_POOL_TIMEOUT` for one instead of failing
    at once (redis-py's default pool raises `MaxConnectionsError`, which turned a burst into
    fallbacks to the database). Short socket timeouts: Redis is an accelerator here, so a slow
    or dead Redis must make a request fall back quickly instead of hanging it. redis-py's
    default retry policy (several attempts with backoff) would stall a request for seconds
    when Redis is down; one immediate retry is kept, which replaces a pooled connection that
    died with a restarted server.
    """
    if settings.redis_url is None:
        return None
    if settings.redis_url.startswith(SENTINEL_SCHEME + "://"):
        # (the sentinel pool is not a blocking one: a burst past its size fails fast)
        target = parse_sentinel_url(settings.redis_url)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.sentinels),
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )
        primary: Redis = sentinel.master_for(
            target.service,
            redis_class=Redis,
            db=target.db,
            password=target.password,
            max_connections=settings.redis_pool_size,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            health_check_interval=15,
            retry=Retry(NoBackoff(), 1),
            decode_responses=False,
        )
        return primary
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        timeout=settings.redis_pool_timeout,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 1),
        decode_responses=False,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() disconnects it


async def close_redis(redis: Redis) -> None:
    """Close the client, and with Sentinel the connections to the sentinels too."""
    await redis.aclose()
    pool = redis.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()
