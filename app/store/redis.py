"""The instance's Redis client (one pool shared by cache, revocation, pub/sub, rate limits)."""

from __future__ import annotations

from redis.asyncio import Redis

from app.config import Settings


def make_redis(settings: Settings) -> Redis | None:
    """A lazily connecting client, or None when no Redis is configured.

    Short timeouts: Redis is an accelerator here, so a slow or dead Redis must make a request
    fall back quickly instead of hanging it.
    """
    if settings.redis_url is None:
        return None
    return Redis.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        health_check_interval=15,
        retry_on_timeout=False,
        decode_responses=False,
    )
