"""`PolicySnapshot.plan`: the one place that picks the evaluator and whether the cache applies."""

from __future__ import annotations

from app.policy.request import DecisionRequest
from tests.support.fidelity import FIDELITY
from tests.support.policies import snapshot_of


def test_indexed_requests_skip_the_cache_other_definitions_use_it() -> None:
    snapshot = snapshot_of(FIDELITY / "enforce_context")
    assert snapshot.evaluator_name == "indexed"
    plain = DecisionRequest.of("ann", "report", "read")
    plan = snapshot.plan(plain)
    assert (plan.evaluator, plan.cacheable) == ("indexed", False)
    assert snapshot.plan(plain, cache_indexed=True).cacheable is True
    assert snapshot.plan(plain, explain=True, cache_indexed=True).cacheable is False
    assert snapshot.decide_planned(plan).allowed is True

    positional = snapshot.plan(DecisionRequest.positional(["ann", "report", "read"]))
    assert positional.evaluator == "indexed"
    assert positional.request.values is None and positional.request.resource == "report"

    second = DecisionRequest.positional(["ben", "restart"], definition="2")
    plan = snapshot.plan(second)
    assert (plan.evaluator, plan.cacheable) == ("generic", True)
    assert snapshot.plan(second, explain=True).cacheable is False
    decision = snapshot.decide_planned(plan)
    assert (decision.allowed, decision.evaluator) == (True, "generic")
    assert snapshot.decide(second) == decision


def test_generic_snapshots_use_the_cache_unless_explaining() -> None:
    snapshot = snapshot_of(FIDELITY / "timed_roles")
    assert snapshot.evaluator_name == "generic"
    request = DecisionRequest.of("ann", "pager", "ack")
    plan = snapshot.plan(request)
    assert (plan.evaluator, plan.cacheable, plan.request) == ("generic", True, request)
    explained = snapshot.plan(request, explain=True)
    assert explained.cacheable is False
    assert snapshot.decide_planned(explained) == snapshot.decide(request, explain=True)
