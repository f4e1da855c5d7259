"""The decision cache: L1 per policy revision, Redis L2 keyed by revision and request digest.

Implements `app.decisions.service.DecisionCache`. The L1 holds one revision at a time: the
first lookup for a newer revision drops it whole (a policy change empties it at once), and a
lookup for an older revision (a batch that started before the change) neither reads nor
writes it. L2 keys carry the revision, so an instance never reads an entry computed under
another policy. A batch costs at most one MGET and one pipelined write.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.cache.keys import CacheKeys
from app.cache.local import RevisionScopedCache
from app.cache.metrics import CacheMetrics
from app.cache.ports import RemoteTier

_TRUE, _FALSE = b"1", b"0"


class TieredDecisionCache:
    def __init__(
        self,
        *,
        keys: CacheKeys,
        max_entries: int,
        ttl: int,
        remote: RemoteTier | None = None,
        metrics: CacheMetrics | None = None,
    ) -> None:
        self.keys = keys
        self.ttl = ttl
        self.remote = remote
        self.metrics = metrics
        self._local: RevisionScopedCache[str, bool] = RevisionScopedCache(
            max_entries=max_entries, ttl=ttl
        )

    def clear(self) -> None:
        self._local.clear()

    async def get_many(self, revision: int, fingerprints: Sequence[str]) -> list[bool | None]:
        local = self._local.for_revision(revision)
        out: list[bool | None] = [None] * len(fingerprints)
        missing: list[int] = []
        for i, fp in enumerate(fingerprints):
            hit = local.get(fp) if local is not None else None
            if hit is None:
                missing.append(i)
            else:
                out[i] = hit
        l1_hits = len(fingerprints) - len(missing)
        l2_hits = 0
        if missing and self.remote is not None and self.remote.usable:
            keys = [self.keys.decision(revision, fingerprints[i]) for i in missing]
            values = await self.remote.mget(keys)
            for i, value in zip(missing, values, strict=True):
                if value is None:
                    continue
                out[i] = value == _TRUE
                l2_hits += 1
                if local is not None:
                    local.put(fingerprints[i], value == _TRUE)
        self._count(l1_hits, l2_hits, len(fingerprints) - l1_hits - l2_hits)
        return out

    async def set_many(self, revision: int, items: Sequence[tuple[str, bool]]) -> None:
        local = self._local.for_revision(revision)
        if local is not None:
            for fp, allowed in items:
                local.put(fp, allowed)
        if self.remote is not None:
            encoded = [
                (self.keys.decision(revision, fp), _TRUE if allowed else _FALSE)
                for fp, allowed in items
            ]
            await self.remote.set_many(encoded, ttl=self.ttl)

    def _count(self, l1: int, l2: int, misses: int) -> None:
        m = self.metrics
        if m is None:
            return
        m.lookup("decision", "l1", "hit", l1)
        m.lookup("decision", "l2", "hit", l2)
        m.lookup("decision", "all", "miss", misses)
