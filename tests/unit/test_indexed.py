"""The indexed path: which models it takes, and the Casbin corners it must get right."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from app.policy.model import parse_model
from app.policy.request import DecisionRequest
from app.policy.rules import Rule
from app.policy.snapshot import PolicySnapshot
from tests.support.policies import EXAMPLES, SHIPPED, snapshot_of

BASE = """
[request_definition]
r = {r}
[policy_definition]
p = {p}
[role_definition]
g = {g}
[policy_effect]
e = {e}
[matchers]
m = {m}
"""
AND_DENY = "some(where (p.eft == allow)) && !some(where (p.eft == deny))"


def build(
    matcher: str,
    rules: Sequence[tuple[str, ...]],
    *,
    effect: str = AND_DENY,
    r: str = "sub, obj, act",
    p: str = "sub, obj, act, eft",
    g: str = "_, _",
) -> PolicySnapshot:
    model = parse_model(BASE.format(r=r, p=p, g=g, e=effect, m=matcher))
    return PolicySnapshot.build(model, [Rule(v[0], tuple(v[1:])) for v in rules], revision=1)


SHAPE = 'g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && (r.act == p.act || p.act == "*")'
RULE = [("p", "alice", "api:x", "read", "allow")]


def test_shipped_and_domain_examples_are_indexed_abac_is_not() -> None:
    assert snapshot_of(SHIPPED).evaluator_name == "indexed"
    assert snapshot_of(EXAMPLES / "rbac_with_domains").evaluator_name == "indexed"
    abac = snapshot_of(EXAMPLES / "abac")
    assert abac.evaluator_name == "generic"
    assert "not indexed" in abac.generic_reason


@pytest.mark.parametrize(
    "matcher",
    [
        SHAPE,
        "keyMatch(r.obj, p.obj) && g(r.sub, p.sub) && (p.act == '*' || p.act == r.act)",
        "g(r.sub, p.sub) && (keyMatch(r.obj, p.obj) && r.act == p.act)",
        "g(r.sub, p.sub) && p.obj == r.obj && r.act == p.act",
        "r.sub == p.sub && keyMatch(r.obj, p.obj) && r.act == p.act",
    ],
)
def test_recognised_shapes(matcher: str) -> None:
    assert build(matcher, RULE).evaluator_name == "indexed"


@pytest.mark.parametrize(
    "matcher",
    [
        # anything the index would have to interpret differently stays generic
        'g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act || p.act == "*"',
        "g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act",
        "g(r.sub, p.sub) && regexMatch(r.obj, p.obj) && r.act == p.act",
        "g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act != p.act",
        "g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && !(r.act == p.act)",
        "g(r.sub, p.sub) && keyMatch(r.obj, p.obj)",
        "g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act && r.sub == p.sub",
        "g(r.sub, p.sub) && keyMatch(p.obj, r.obj) && r.act == p.act",
        "g(p.sub, r.sub) && keyMatch(r.obj, p.obj) && r.act == p.act",
        "g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act == p.eft",
        'g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && (r.act == p.act || p.act == "all")',
        "g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act && r.obj.owner == r.sub",
        "g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act && true",
    ],
)
def test_unrecognised_shapes_fall_back_to_generic(matcher: str) -> None:
    snapshot = build(matcher, RULE)
    assert snapshot.evaluator_name == "generic", matcher
    assert snapshot.generic_reason


def test_priority_effect_and_empty_policy_are_generic() -> None:
    priority = build(
        "g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act",
        RULE,
        effect="priority(p.eft) || deny",
    )
    assert priority.evaluator_name == "generic"
    assert build(SHAPE, []).evaluator_name == "generic"


def ask(snapshot: PolicySnapshot, sub: str, obj: str, act: str) -> bool:
    request = DecisionRequest.of(sub, obj, act)
    fast = snapshot.decide(request, explain=True)
    generic = snapshot.decide_generic(request, explain=True)
    assert fast.evaluator == "indexed"
    assert (fast.allowed, fast.rule, fast.role_path) == (
        generic.allowed,
        generic.rule,
        generic.role_path,
    )
    return fast.allowed


def test_keymatch_star_anywhere_is_a_prefix() -> None:
    """keyMatch cuts the pattern at its first `*`: `api:*:read` is the prefix `api:`."""
    snapshot = build(SHAPE, [("p", "alice", "api:*:read", "read", "allow")])
    assert ask(snapshot, "alice", "api:", "read")
    assert ask(snapshot, "alice", "api:anything:write", "read")
    assert not ask(snapshot, "alice", "api", "read")
    assert not ask(snapshot, "alice", "ap", "read")


def test_role_chain_is_cut_after_nine_links() -> None:
    chain = [f"r{i}" for i in range(12)]
    rules: list[tuple[str, ...]] = [("g", "alice", chain[0])]
    rules += [("g", a, b) for a, b in itertools.pairwise(chain)]
    rules += [("p", role, f"res-{role}", "read", "allow") for role in chain]
    snapshot = build(SHAPE, rules)
    reachable = [ask(snapshot, "alice", f"res-{role}", "read") for role in chain]
    assert reachable == [True] * 9 + [False] * 3  # r8 is 9 links from alice


def test_first_deny_in_policy_order_is_reported() -> None:
    snapshot = build(
        SHAPE,
        [
            ("p", "viewer", "api:*", "*", "allow"),
            ("p", "viewer", "api:x", "read", "deny"),
            ("p", "alice", "api:*", "read", "deny"),
            ("g", "alice", "viewer"),
        ],
    )
    decision = snapshot.decide(DecisionRequest.of("alice", "api:x", "read"), explain=True)
    assert not decision.allowed
    assert decision.rule is not None and decision.rule.values == ("viewer", "api:x", "read", "deny")
    assert decision.role_path == ("alice", "viewer")
