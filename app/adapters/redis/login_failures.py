"""`FailureStore` on Redis: failure buckets and known sources shared by every instance.

Keys (under `{service}:{version}`): `login:fail:{sha}` (hash `count`, `last`; TTL = the
policy window) and `login:known:{account sha}:{source}` (TTL = how long a source is
remembered). Account names are hashed: keys never carry a username. Every failure and known
source this instance records is also kept in process, so if Redis fails (or answers too
slowly) the in-process copy answers with what this instance saw: never a 5xx, and an
attacker who slows Redis down does not reset the back-off he already earned here.
"""

from __future__ import annotations

import hashlib

from loguru import logger

from app.adapters.redis.client import RedisClient
from app.security.login_guard import MemoryFailureStore


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:40]


class RedisFailureStore:
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.fallback = MemoryFailureStore()  # what this instance saw, kept whatever Redis does

    def _fail_key(self, bucket: str) -> str:
        account, _, source = bucket.partition("\x1f")
        suffix = f":{source}" if source else ""
        return f"{self.prefix}:login:fail:{_h(account)}{suffix}"

    def _known_key(self, account: str, source: str) -> str:
        return f"{self.prefix}:login:known:{_h(account)}:{source}"

    async def failures(self, bucket: str) -> tuple[int, float]:
        try:
            raw = await self.redis.hmget(self._fail_key(bucket), ["count", "last"])
        except Exception as exc:
            logger.warning("login_guard.storage_unavailable", error=type(exc).__name__)
            return await self.fallback.failures(bucket)
        if raw[0] is None:
            return 0, 0.0
        return int(raw[0]), float(raw[1] or 0)

    async def add_failure(self, bucket: str, now: float, ttl: int) -> int:
        key = self._fail_key(bucket)
        local = await self.fallback.add_failure(bucket, now, ttl)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, "count", 1)
                pipe.hset(key, "last", repr(now))
                pipe.expire(key, ttl)
                count, *_ = await pipe.execute()
            return int(count)
        except Exception as exc:
            logger.warning("login_guard.storage_unavailable", error=type(exc).__name__)
            return local

    async def clear(self, bucket: str) -> None:
        try:
            await self.redis.delete(self._fail_key(bucket))
        except Exception as exc:
            logger.warning("login_guard.storage_unavailable", error=type(exc).__name__)
        await self.fallback.clear(bucket)

    async def clear_account(self, account: str) -> int:
        base = self._fail_key(account)
        keys = [base]
        async for key in self.redis.scan_iter(match=f"{base}:*", count=500):
            keys.append(key)
        removed = int(await self.redis.delete(*keys))
        return removed + await self.fallback.clear_account(account)

    async def remember(self, account: str, source: str, ttl: int) -> None:
        await self.fallback.remember(account, source, ttl)
        try:
            await self.redis.set(self._known_key(account, source), b"1", ex=ttl)
        except Exception as exc:
            logger.warning("login_guard.storage_unavailable", error=type(exc).__name__)

    async def is_known(self, account: str, source: str) -> bool:
        try:
            return bool(await self.redis.exists(self._known_key(account, source)))
        except Exception as exc:
            logger.warning("login_guard.storage_unavailable", error=type(exc).__name__)
            return await self.fallback.is_known(account, source)
