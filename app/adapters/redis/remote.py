"""The Redis tier: batched operations that never raise.

Each call is one round trip (MGET, or a non-transactional pipeline), whatever the number of
keys; in a cluster, one per node holding some of them, sent together. A failure marks Redis
down in `RedisAvailability` and answers as a miss; while Redis is down the calls return at
once without touching the network.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.adapters.redis.availability import RedisAvailability, is_redis_failure
from app.adapters.redis.client import RedisClient, mget


class RedisTier:
    def __init__(self, redis: RedisClient, availability: RedisAvailability) -> None:
        self.redis = redis
        self.availability = availability

    @property
    def usable(self) -> bool:
        return self.availability.usable

    def _failed(self, op: str, exc: BaseException) -> None:
        if not is_redis_failure(exc):
            raise exc
        self.availability.failed(op, exc)

    async def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys or not self.usable:
            return [None] * len(keys)
        try:
            values = await mget(self.redis, list(keys))
        except Exception as exc:
            self._failed("mget", exc)
            return [None] * len(keys)
        return [v if isinstance(v, bytes) or v is None else str(v).encode() for v in values]

    async def set_many(self, items: Sequence[tuple[str, bytes]], *, ttl: int) -> None:
        if not items or not self.usable or ttl <= 0:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(key, value, ex=ttl)
                await pipe.execute()
        except Exception as exc:
            self._failed("set", exc)

    async def hget_many(self, pairs: Sequence[tuple[str, str]]) -> list[bytes | None]:
        if not pairs or not self.usable:
            return [None] * len(pairs)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, field in pairs:
                    pipe.hget(key, field)
                values: list[bytes | None] = await pipe.execute()
        except Exception as exc:
            self._failed("hget", exc)
            return [None] * len(pairs)
        return values

    async def hset_many(self, items: Sequence[tuple[str, str, bytes]], *, ttl: int) -> None:
        if not items or not self.usable or ttl <= 0:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, field, value in items:
                    pipe.hset(key, field, value)
                    pipe.expire(key, ttl)
                await pipe.execute()
        except Exception as exc:
            self._failed("hset", exc)

    async def delete(self, *keys: str) -> None:
        if not keys or not self.usable:
            return
        try:
            await self.redis.delete(*keys)
        except Exception as exc:
            self._failed("delete", exc)

    async def publish(self, channel: str, message: str) -> bool:
        if not self.usable:
            return False
        try:
            await self.redis.publish(channel, message)
        except Exception as exc:
            self._failed("publish", exc)
            return False
        return True
