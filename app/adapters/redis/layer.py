"""One instance's cache layer, built from settings: tiers, invalidation and warming together.

`build_cache_layer` wires it to the engine (`on_change`: drop L1s, announce, warm) and
`start()` (after the first policy load) starts the background tasks: the Redis probe is
started on demand, the pub/sub subscriber, the database poller and the warmer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from app.adapters.redis.availability import RedisAvailability
from app.adapters.redis.client import RedisClient
from app.adapters.redis.remote import RedisTier
from app.adapters.redis.sync import PolicySync
from app.adapters.redis.warming import ActivityTracker, CacheWarmer
from app.cache.decisions import TieredDecisionCache
from app.cache.keys import CacheKeys
from app.cache.metrics import CacheMetrics
from app.cache.permissions import PermissionSetCache
from app.config import Settings
from app.decisions.permissions import PermissionService
from app.observability.metrics import Metrics
from app.policy.engine import PolicyEngine
from app.policy.snapshot import PolicySnapshot


@dataclass
class CacheLayer:
    keys: CacheKeys
    metrics: CacheMetrics
    decisions: TieredDecisionCache
    permission_sets: PermissionSetCache
    permissions: PermissionService
    activity: ActivityTracker
    sync: PolicySync
    warmer: CacheWarmer
    availability: RedisAvailability | None = None

    async def on_policy_change(self, snapshot: PolicySnapshot, trigger: str) -> None:
        """Drop every L1 keyed by policy (they are per revision anyway) and re-warm."""
        self.decisions.clear()
        self.warmer.schedule()

    def start(self) -> None:
        self.sync.start()
        self.warmer.start()

    async def close(self) -> None:
        """Every part is told to stop before any is waited for: the shutdown bounds each step
        (`app.services.Lifecycle`), and a part still running when Redis closes would open a
        new connection on the closed client that nothing ever closes."""
        self.warmer.stop()
        self.sync.stop()
        if self.availability is not None:
            self.availability.stop()
        parts = [self.warmer.close(), self.sync.close()]
        if self.availability is not None:
            parts.append(self.availability.close())
        await asyncio.gather(*parts)

    def status(self) -> dict[str, Any]:
        """For `/readyz`: Redis state and how policy changes reach this instance."""
        if self.availability is None:
            return {"status": "local", "redis": "not configured", "policy_sync": "db-poll"}
        redis = self.availability.status
        return {
            "status": "ok" if redis["status"] == "ok" else "degraded",
            "redis": redis,
            "policy_sync": "pubsub+db-poll" if self.sync.subscribed else "db-poll",
        }


def build_cache_layer(
    settings: Settings, engine: PolicyEngine, *, redis: RedisClient | None, metrics: Metrics
) -> CacheLayer:
    keys = CacheKeys(settings.key_prefix)
    cache_metrics = CacheMetrics(metrics)
    availability = RedisAvailability(redis, metrics=cache_metrics) if redis is not None else None
    remote = RedisTier(redis, availability) if redis is not None and availability else None
    decisions = TieredDecisionCache(
        keys=keys,
        max_entries=settings.decision_cache_size,
        ttl=settings.decision_cache_ttl,
        remote=remote,
        metrics=cache_metrics,
    )
    permission_sets = PermissionSetCache(
        keys=keys,
        max_entries=settings.permission_cache_size,
        ttl=settings.permission_cache_ttl,
        remote=remote,
        metrics=cache_metrics,
    )
    permissions = PermissionService(engine, cache=permission_sets)
    activity = ActivityTracker(keys=keys, redis=redis, availability=availability)
    sync = PolicySync(
        engine,
        keys=keys,
        poll_interval=settings.policy_poll_interval,
        redis=redis,
        availability=availability,
        metrics=cache_metrics,
    )
    warmer = CacheWarmer(
        engine, permissions, activity, subjects=settings.cache_warm_subjects, metrics=cache_metrics
    )
    layer = CacheLayer(
        keys=keys,
        metrics=cache_metrics,
        decisions=decisions,
        permission_sets=permission_sets,
        permissions=permissions,
        activity=activity,
        sync=sync,
        warmer=warmer,
        availability=availability,
    )
    engine.on_change(sync.on_change)
    engine.on_change(layer.on_policy_change)
    if availability is not None:

        async def resync() -> None:
            await sync.catch_up("recovered")

        availability.on_recovery(resync)
    return layer
