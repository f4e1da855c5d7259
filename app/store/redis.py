"""The instance's Redis client (one pool shared by cache, revocation, pub/sub, rate limits)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

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
