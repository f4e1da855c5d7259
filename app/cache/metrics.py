"""Prometheus series of the cache package, registered on the instance's registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from app.observability.metrics import Metrics


class CacheMetrics:
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.lookups = Counter(
            "oms_auth_cache_lookups_total",
            "Cache lookups by cache, tier and result",
            ["cache", "tier", "result"],
            registry=r,
        )
        self.redis_up = Gauge(
            "oms_auth_redis_up",
            "1 while Redis answers, 0 while the cache runs degraded (any worker)",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.redis_errors = Counter(
            "oms_auth_redis_errors_total",
            "Redis operations that failed (the request carried on without Redis)",
            ["op"],
            registry=r,
        )
        self.redis_transitions = Counter(
            "oms_auth_redis_state_changes_total",
            "Redis availability changes (down = degraded, up = recovered)",
            ["state"],
            registry=r,
        )
        self.sync_events = Counter(
            "oms_auth_policy_sync_total",
            "Policy changes seen from other instances, by how they arrived and what was done",
            ["source", "result"],
            registry=r,
        )
        self.warm_seconds = Histogram(
            "oms_auth_cache_warm_seconds",
            "Time to warm the caches after a policy change",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
            registry=r,
        )
        self.warmed_subjects = Gauge(
            "oms_auth_cache_warmed_subjects",
            "Subjects warmed after the last change",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self._lookup_children: dict[tuple[str, str, str], MetricWrapperBase] = {}

    def lookup(self, cache: str, tier: str, result: str, count: int = 1) -> None:
        if count <= 0:
            return
        key = (cache, tier, result)
        child = self._lookup_children.get(key)
        if child is None:
            child = self._lookup_children[key] = self.lookups.labels(*key)
        child.inc(count)  # type: ignore[attr-defined]
