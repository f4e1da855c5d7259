"""The instance's Redis client (one pool shared by cache, revocation, pub/sub, rate limits)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.config import Settings


def make_redis(settings: Settings) -> Redis | None:
    """A lazily connecting client, or None when no Redis is configured.

    Short timeouts: Redis is an accelerator here, so a slow or dead Redis must make a request
    fall back quickly instead of hanging it. redis-py's default retry policy (10 attempts with
    backoff up to 1 s) would stall a request for seconds when Redis is down; one immediate
    retry is kept, which replaces a pooled connection that died with a restarted server.
    """
    if settings.redis_url is None:
        return None
    return Redis.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 1),
        decode_responses=False,
    )
