"""Decisions as the API serves them: engine + cache + metrics, one or many at a time.

The HTTP layer only parses and renders; everything about answering lives here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.cache.keys import decision_digest
from app.errors import AuthzError
from app.observability.metrics import Metrics
from app.policy.decision import Decision, DecisionPlan
from app.policy.engine import PolicyEngine
from app.policy.request import DecisionRequest
from app.policy.snapshot import PolicySnapshot


def new_decision_id() -> str:
    return "dec_" + os.urandom(10).hex()


def new_decision_ids(count: int) -> list[str]:
    """`count` ids from one read of the system's random source (batches of 1000)."""
    raw = os.urandom(10 * count).hex()
    return ["dec_" + raw[i : i + 20] for i in range(0, 20 * count, 20)]


@dataclass(frozen=True, slots=True)
class DecisionResult:
    decision: Decision
    decision_id: str
    cached: bool

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    def as_dict(self, *, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "allowed": self.decision.allowed,
            "decision_id": self.decision_id,
            "cached": self.cached,
            "policy_revision": self.decision.revision,
        }
        if explain:
            out["explain"] = self.decision.explain()
        return out


class DecisionCache(Protocol):
    """Remembers plain decisions per (revision, request fingerprint)."""

    async def get_many(self, revision: int, fingerprints: Sequence[str]) -> list[bool | None]: ...

    async def set_many(self, revision: int, items: Sequence[tuple[str, bool]]) -> None: ...


class ActivityRecorder(Protocol):
    """Counts checks per subject (drives cache warming); must be cheap, it runs per check."""

    def record(self, subject: str, domain: str | None = None) -> None: ...


class DecisionSink(Protocol):
    """Receives every answered check (decision logs); must only enqueue and return."""

    def decided(
        self,
        snapshot: PolicySnapshot,
        requests: Sequence[DecisionRequest],
        results: Sequence[DecisionResult | AuthzError],
        seconds: float,
        kind: str,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class DecisionBatch:
    """A batch's answers in request order (an item's own error in its place), all from the
    snapshot at `revision`."""

    results: list[DecisionResult | AuthzError]
    revision: int


class DecisionService:
    """Answers checks against one policy snapshot per call.

    Which evaluator answers a request and whether the decision cache may stand in for it is
    the snapshot's call (`PolicySnapshot.plan`): indexed checks cost less than a cache key
    and are answered directly (`cached: false`); generic-path decisions, which scan every
    rule, go through the decision cache (L1, then one Redis MGET per batch).
    `cache_indexed=True` puts the cache in front of indexed checks too (benchmarks only).
    """

    def __init__(
        self,
        engine: PolicyEngine,
        *,
        metrics: Metrics | None = None,
        cache: DecisionCache | None = None,
        activity: ActivityRecorder | None = None,
        cache_indexed: bool = False,
        sink: DecisionSink | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.cache = cache
        self.activity = activity
        self.cache_indexed = cache_indexed
        self.sink = sink
        self._counters: dict[tuple[bool, str, bool], Any] = {}
        self._latencies: dict[str, Any] = {}

    @property
    def snapshot(self) -> PolicySnapshot:
        """The policy decisions are made from now (for what a request must name first: a
        tenant, the entities a search may return)."""
        return self.engine.snapshot

    async def check(self, request: DecisionRequest, *, explain: bool = False) -> DecisionResult:
        snapshot = self.engine.snapshot
        plan = snapshot.plan(request, explain=explain, cache_indexed=self.cache_indexed)
        if plan.cacheable and self.cache is not None:
            answer = (await self._many(snapshot, (request,), (plan,), "check")).results[0]
            if isinstance(answer, AuthzError):
                raise answer
            return answer
        started = time.perf_counter()
        try:
            decision = snapshot.decide_planned(plan)
        except AuthzError as exc:
            self._record_activity((request,))
            if self.sink is not None:
                elapsed = time.perf_counter() - started
                self.sink.decided(snapshot, (request,), (exc,), elapsed, "check")
            raise
        elapsed = time.perf_counter() - started
        self._record_activity((request,))
        result = DecisionResult(decision, new_decision_id(), False)
        self._observe_one(decision, elapsed)
        if self.sink is not None:
            self.sink.decided(snapshot, (request,), (result,), elapsed, "check")
        return result

    async def check_many(
        self, requests: Sequence[DecisionRequest], *, explain: bool = False
    ) -> DecisionBatch:
        """Every request against one policy snapshot, results in request order.

        Explained decisions are always computed (the trace is not cached); the cacheable rest
        are looked up in the cache in one round trip and only the misses are evaluated.
        """
        snapshot = self.engine.snapshot
        plan, cache_indexed = snapshot.plan, self.cache_indexed
        plans = [plan(r, explain=explain, cache_indexed=cache_indexed) for r in requests]
        return await self._many(snapshot, requests, plans, "batch")

    async def _many(
        self,
        snapshot: PolicySnapshot,
        requests: Sequence[DecisionRequest],
        plans: Sequence[DecisionPlan],
        kind: str,
    ) -> DecisionBatch:
        revision = snapshot.revision
        cached: list[bool | None] = [None] * len(requests)
        fingerprints: dict[int, str] = {}
        if self.cache is not None:
            policy = snapshot.content_digest
            fingerprints = {
                i: decision_digest(policy, requests[i].fingerprint())
                for i, plan in enumerate(plans)
                if plan.cacheable
            }
            if fingerprints:
                found = await self.cache.get_many(revision, list(fingerprints.values()))
                for i, hit in zip(fingerprints, found, strict=True):
                    cached[i] = hit
        out: list[DecisionResult | AuthzError] = []
        fresh: list[tuple[str, bool]] = []
        ids = new_decision_ids(len(requests))
        started = time.perf_counter()
        for i, plan in enumerate(plans):
            hit = cached[i]
            if hit is not None:
                out.append(DecisionResult(Decision(hit, revision, plan.evaluator), ids[i], True))
                continue
            try:
                decision = snapshot.decide_planned(plan)
            except AuthzError as exc:
                out.append(exc)
                continue
            out.append(DecisionResult(decision, ids[i], False))
            if i in fingerprints:
                fresh.append((fingerprints[i], decision.allowed))
        elapsed = time.perf_counter() - started
        if fresh and self.cache is not None:
            await self.cache.set_many(revision, fresh)
        self._record_activity(requests)
        self._observe(out, elapsed)
        if self.sink is not None:
            self.sink.decided(snapshot, requests, out, elapsed, kind)
        return DecisionBatch(out, revision)

    def _record_activity(self, requests: Sequence[DecisionRequest]) -> None:
        if self.activity is not None:
            for request in requests:
                self.activity.record(str(request.subject), request.domain)

    def _observe_one(self, decision: Decision, seconds: float) -> None:
        m = self.metrics
        if m is None:
            return
        key = (decision.allowed, decision.evaluator, False)
        counter = self._counters.get(key)
        histogram = self._latencies.get(decision.evaluator)
        if counter is None or histogram is None:
            self._observe([DecisionResult(decision, "", False)], seconds)
            return
        counter.inc()
        histogram.observe(seconds)

    def _observe(self, results: Sequence[DecisionResult | AuthzError], seconds: float) -> None:
        m = self.metrics
        if m is None or not results:
            return
        counts: dict[tuple[bool, str, bool], int] = {}
        evaluated: dict[str, int] = {}
        for r in results:
            if isinstance(r, DecisionResult):
                d = r.decision
                key = (d.allowed, d.evaluator, r.cached)
                counts[key] = counts.get(key, 0) + 1
                if not r.cached:
                    evaluated[d.evaluator] = evaluated.get(d.evaluator, 0) + 1
        for key, n in counts.items():
            counter = self._counters.get(key)
            if counter is None:
                allowed, path, cached = key
                counter = self._counters[key] = m.decisions.labels(
                    allowed=str(allowed).lower(), path=path, cached=str(cached).lower()
                )
            counter.inc(n)
        per = seconds / max(1, sum(evaluated.values()))
        for path, n in evaluated.items():
            histogram = self._latencies.get(path)
            if histogram is None:
                histogram = self._latencies[path] = m.decision_latency.labels(path=path)
            for _ in range(n):
                histogram.observe(per)
