"""Token validation results, cached for the token endpoints (`/api/v1/tokens/validate`, ...).

For the tokens package: after a full validation (signature, claims, revocation check),
`put(token, result, ttl=...)` stores the outcome; `get`/`get_many` return it (one MGET for a
batch). Keys are `{prefix}:auth:token:{sha256(token)}`: a raw token is never stored, logged
or sent to Redis. `ttl` should not exceed the token's remaining lifetime.

Revocation: `forget(token)` deletes the shared entry and announces the digest on the
eviction channel; every instance's subscriber drops it from its L1 (`evict_local`). The L1
also keeps an entry at most `local_ttl` seconds, which bounds staleness if an announcement
is lost (Redis down). Callers that must see a revocation instantly should keep checking
their revocation list before trusting a cached positive result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from app.cache.keys import CacheKeys, token_digest
from app.cache.local import LocalCache
from app.cache.metrics import CacheMetrics
from app.cache.remote import RedisTier

ValidationResult = dict[str, Any]  # e.g. {"valid": true, "claims": {...}}


class TokenValidationCache:
    def __init__(
        self,
        *,
        keys: CacheKeys,
        max_entries: int = 50_000,
        local_ttl: float = 5.0,
        remote: RedisTier | None = None,
        metrics: CacheMetrics | None = None,
    ) -> None:
        self.keys = keys
        self.local_ttl = local_ttl
        self.remote = remote
        self.metrics = metrics
        self._local: LocalCache[str, ValidationResult] = LocalCache(
            max_entries=max_entries, ttl=local_ttl
        )

    async def get(self, token: str) -> ValidationResult | None:
        return (await self.get_many([token]))[0]

    async def get_many(self, tokens: Sequence[str]) -> list[ValidationResult | None]:
        digests = [token_digest(t) for t in tokens]
        out: list[ValidationResult | None] = [self._local.get(d) for d in digests]
        missing = [i for i, value in enumerate(out) if value is None]
        l2_hits = 0
        if missing and self.remote is not None and self.remote.usable:
            keys = [self.keys.auth_token_digest(digests[i]) for i in missing]
            for i, raw in zip(missing, await self.remote.mget(keys), strict=True):
                value = _decode(raw)
                if value is not None:
                    out[i] = value
                    l2_hits += 1
                    self._local.put(digests[i], value)
        if self.metrics is not None:
            self.metrics.lookup("token", "l1", "hit", len(tokens) - len(missing))
            self.metrics.lookup("token", "l2", "hit", l2_hits)
            self.metrics.lookup("token", "all", "miss", len(missing) - l2_hits)
        return out

    async def put(self, token: str, result: ValidationResult, *, ttl: int) -> None:
        if ttl <= 0:
            return
        digest = token_digest(token)
        self._local.put(digest, result, ttl=min(float(ttl), self.local_ttl))
        if self.remote is not None:
            raw = orjson.dumps(result)
            await self.remote.set_many([(self.keys.auth_token_digest(digest), raw)], ttl=ttl)

    async def forget(self, token: str) -> None:
        """Drop a token's result everywhere (after revocation or logout)."""
        digest = token_digest(token)
        self._local.pop(digest)
        if self.remote is not None:
            await self.remote.delete(self.keys.auth_token_digest(digest))
            await self.remote.publish(self.keys.evict_channel, digest)

    def evict_local(self, digest: str) -> None:
        """Called for every digest another instance announced."""
        self._local.pop(digest)


def _decode(raw: bytes | None) -> ValidationResult | None:
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
