"""Prometheus metrics, one registry per application instance (no global state).

A per-app registry keeps several apps in one process (tests, two-instance setups) from
sharing counters. Other packages register their own series through `Metrics.registry`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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
            "oms_auth_policy_revision", "Policy revision currently served", registry=r
        )
        self.policy_rules = Gauge(
            "oms_auth_policy_rules", "Rules loaded in the live policy", ["ptype"], registry=r
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
