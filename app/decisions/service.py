"""Decisions as the API serves them: engine + cache + metrics, one or many at a time.

The HTTP layer only parses and renders; everything about answering lives here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.errors import AuthzError
from app.observability.metrics import Metrics
from app.policy.decision import Decision
from app.policy.engine import PolicyEngine
from app.policy.request import DecisionRequest


def new_decision_id() -> str:
    return "dec_" + os.urandom(10).hex()


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


class DecisionService:
    def __init__(
        self,
        engine: PolicyEngine,
        *,
        metrics: Metrics | None = None,
        cache: DecisionCache | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.cache = cache

    async def check(self, request: DecisionRequest, *, explain: bool = False) -> DecisionResult:
        result = (await self.check_many([request], explain=explain))[0]
        if isinstance(result, AuthzError):
            raise result
        return result

    async def check_many(
        self, requests: Sequence[DecisionRequest], *, explain: bool = False
    ) -> list[DecisionResult | AuthzError]:
        """Every request against one policy snapshot, results in request order.

        Explained decisions are always computed (the trace is not cached); the rest are
        looked up in the cache in one round trip and only the misses are evaluated.
        """
        snapshot = self.engine.snapshot
        revision = snapshot.revision
        cached: list[bool | None] = [None] * len(requests)
        if self.cache is not None and not explain and requests:
            fingerprints = [r.fingerprint() for r in requests]
            cached = await self.cache.get_many(revision, fingerprints)
        out: list[DecisionResult | AuthzError] = []
        fresh: list[tuple[str, bool]] = []
        started = time.perf_counter()
        for i, request in enumerate(requests):
            hit = cached[i]
            if hit is not None:
                decision = Decision(hit, revision, "cache")
                out.append(DecisionResult(decision, new_decision_id(), True))
                continue
            try:
                decision = snapshot.decide(request, explain=explain)
            except AuthzError as exc:
                out.append(exc)
                continue
            out.append(DecisionResult(decision, new_decision_id(), False))
            if self.cache is not None and not explain:
                fresh.append((request.fingerprint(), decision.allowed))
        elapsed = time.perf_counter() - started
        if fresh and self.cache is not None:
            await self.cache.set_many(revision, fresh)
        self._observe(out, elapsed)
        return out

    def _observe(self, results: Sequence[DecisionResult | AuthzError], seconds: float) -> None:
        m = self.metrics
        if m is None or not results:
            return
        per = seconds / len(results)
        for r in results:
            if isinstance(r, DecisionResult):
                d = r.decision
                m.decisions.labels(
                    allowed=str(d.allowed).lower(), path=d.evaluator, cached=str(r.cached).lower()
                ).inc()
                if not r.cached:
                    m.decision_latency.labels(path=d.evaluator).observe(per)
