"""The example-model benchmark runs, and its generated large pattern policy decides as Casbin."""

from __future__ import annotations

import importlib
from pathlib import Path

from app.policy.request import DecisionRequest
from bench.models import write_large_pattern
from tests.support.fidelity import casbin_answer, casbin_enforcer
from tests.support.policies import snapshot_of


def test_bench_entry_point_imports() -> None:
    assert callable(importlib.import_module("bench.__main__").main)


def test_generated_pattern_policy_matches_casbin(tmp_path: Path) -> None:
    asks = write_large_pattern(tmp_path, orgs=20)
    ours = snapshot_of(tmp_path)
    oracle = casbin_enforcer(tmp_path)
    answers = [casbin_answer(oracle, a)[0] for a in asks[:60]]
    assert any(answers) and not all(answers)
    for ask, allowed in zip(asks[:60], answers, strict=True):
        decision = ours.decide(DecisionRequest.positional(ask.values))
        assert decision.allowed is allowed, ask
