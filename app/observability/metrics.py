"""Prometheus metrics, one registry per application instance (no global state).

A per-app registry keeps several apps in one process (tests, two-instance setups) from
sharing counters. Other packages register their own series through `Metrics.registry`.

Under `oms-auth serve --workers N` (N > 1) the supervisor points `PROMETHEUS_MULTIPROC_DIR` at
a fresh directory before it starts the workers: every worker then writes its values there
(prometheus-client's multiprocess mode) and `/metrics`, whichever worker answers, renders the
whole process group. Counters are summed over every worker that ever ran in this start, so
they never go backwards when a worker is replaced; each gauge says how its workers combine
(`multiprocess_mode`: `livesum`, `livemax`, `livemin`, ... over the workers alive now).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from app.observability.process import ProcessMetrics

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared metrics directory of this process group, when it runs several workers."""
    return os.environ.get(MULTIPROC_ENV) or None


def worker_exited(pid: int | None = None) -> None:
    """Drop a finished worker's live gauges (its counters stay in the totals)."""
    shared = multiprocess_dir()
    if shared is not None:
        mark_process_dead(pid or os.getpid(), shared)  # type: ignore[no-untyped-call]


_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "oms_auth_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "oms_auth_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "oms_auth_decisions_total",
            "Authorization decisions by outcome, evaluation path and cache use",
            ["allowed", "path", "cached"],
            registry=r,
        )
        self.decision_latency = Histogram(
            "oms_auth_decision_duration_seconds",
            "Engine time per decision (excluding HTTP)",
            ["path"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.policy_revision = Gauge(
            "oms_auth_policy_revision",
            "Policy revision currently served (several workers: the newest any serves)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.policy_rules = Gauge(
            "oms_auth_policy_rules",
            "Rules loaded in the live policy",
            ["ptype"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.policy_reloads = Counter(
            "oms_auth_policy_reloads_total",
            "Policy (re)loads by trigger and result",
            ["trigger", "result"],
            registry=r,
        )
        self.policy_load_seconds = Histogram(
            "oms_auth_policy_load_seconds",
            "Time to build a policy snapshot",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )

        self.process = ProcessMetrics(r)

    def render(self) -> bytes:
        self.process.update()
        shared = multiprocess_dir()
        if shared is None:
            return generate_latest(self.registry)
        group = CollectorRegistry()
        MultiProcessCollector(group, path=shared)  # type: ignore[no-untyped-call]
        return generate_latest(group)
