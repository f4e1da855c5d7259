"""Cached permission sets (roles, rules, scopes of a user), for the permissions API and warming.

Where: the in-process tier always; Redis only when asked (`shared=True`), which the
permission service does for snapshots on the generic path. Measured (docs/benchmarks.md): an
indexed permission set computes in ~30 µs and a Redis round trip costs ~200 µs, while on the
generic path a set costs one full rule scan per allow rule, milliseconds to seconds.

Redis layout keeps the documented key `{prefix}:user:permissions:{user_id}` as a hash with one
field per domain ("" when none), so user ids and domains never collide in a key. Each value
carries the policy revision and content digest it was computed under and is ignored under
any other: no purge is needed when the policy changes, and a stale set is never served.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from app.cache.keys import CacheKeys
from app.cache.local import RevisionScopedCache
from app.cache.metrics import CacheMetrics
from app.cache.ports import RemoteTier

PermissionSet = dict[str, Any]


class PermissionSetCache:
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
        self._local: RevisionScopedCache[tuple[str, str, str], PermissionSet] = RevisionScopedCache(
            max_entries=max_entries, ttl=ttl
        )

    async def get_many(
        self,
        revision: int,
        user_ids: Sequence[str],
        domain: str | None,
        *,
        shared: bool = True,
        policy: str = "",
    ) -> list[PermissionSet | None]:
        """`policy` is the snapshot's content digest; entries of other content never match."""
        field = domain or ""
        local = self._local.for_revision(revision)
        out: list[PermissionSet | None] = [
            local.get((uid, field, policy)) if local is not None else None for uid in user_ids
        ]
        missing = [i for i, value in enumerate(out) if value is None]
        l2_hits = 0
        if missing and shared and self.remote is not None and self.remote.usable:
            pairs = [(self.keys.user_permissions(user_ids[i]), field) for i in missing]
            for i, raw in zip(missing, await self.remote.hget_many(pairs), strict=True):
                value = _decode(raw, revision, policy)
                if value is None:
                    continue
                out[i] = value
                l2_hits += 1
                if local is not None:
                    local.put((user_ids[i], field, policy), value)
        if self.metrics is not None:
            self.metrics.lookup("permissions", "l1", "hit", len(user_ids) - len(missing))
            self.metrics.lookup("permissions", "l2", "hit", l2_hits)
            self.metrics.lookup("permissions", "all", "miss", len(missing) - l2_hits)
        return out

    async def put_many(
        self,
        revision: int,
        items: Sequence[tuple[str, PermissionSet]],
        domain: str | None,
        *,
        shared: bool = True,
        policy: str = "",
    ) -> None:
        field = domain or ""
        local = self._local.for_revision(revision)
        if local is not None:
            for uid, value in items:
                local.put((uid, field, policy), value)
        if shared and self.remote is not None:
            encoded = [
                (
                    self.keys.user_permissions(uid),
                    field,
                    orjson.dumps({"revision": revision, "policy": policy, "set": value}),
                )
                for uid, value in items
            ]
            await self.remote.hset_many(encoded, ttl=self.ttl)


def _decode(raw: bytes | None, revision: int, policy: str) -> PermissionSet | None:
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("revision") != revision:
        return None
    if data.get("policy") != policy:
        return None
    value = data.get("set")
    return value if isinstance(value, dict) else None
