"""What the caches need from a shared tier (Redis in `app.adapters.redis.remote`).

A shared tier never raises: a failure answers as a miss (or drops the write) and marks the
tier unusable until it recovers, so a cache lookup costs nothing when the tier is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class RemoteTier(Protocol):
    @property
    def usable(self) -> bool: ...

    async def mget(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set_many(self, items: Sequence[tuple[str, bytes]], *, ttl: int) -> None: ...

    async def hget_many(self, pairs: Sequence[tuple[str, str]]) -> list[bytes | None]: ...

    async def hset_many(self, items: Sequence[tuple[str, str, bytes]], *, ttl: int) -> None: ...
