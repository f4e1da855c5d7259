"""The shipped RBAC policy decides and explains as its comments promise."""

from __future__ import annotations

import pytest

from app.policy.request import DecisionRequest
from tests.support.policies import SHIPPED, snapshot_of

snap = snapshot_of(SHIPPED)


@pytest.mark.parametrize(
    ("subject", "resource", "action", "allowed"),
    [
        ("alice", "api:schemas", "write", True),  # developer
        ("alice", "api:ontologies:geo", "read", True),  # inherited from viewer
        ("alice", "api:branches:feature-x", "delete", True),
        ("alice", "api:branches:main", "delete", False),  # explicit deny beats the pattern
        ("alice", "api:ontologies:published:v1", "write", False),
        ("alice", "api:policies", "write", False),
        ("bob", "api:schemas", "read", True),  # viewer
        ("bob", "api:schemas", "write", False),
        ("carol", "api:policies", "write", True),  # admin wildcard
        ("carol", "api:branches:main", "delete", False),  # deny applies to admins too
        ("dave", "api:audit", "read", True),
        ("dave", "api:schemas", "read", False),
        ("client:ci-pipeline", "api:branches:ci-123", "write", True),
        ("mallory", "api:schemas", "read", False),  # unknown subject: default deny
    ],
)
def test_decisions(subject: str, resource: str, action: str, allowed: bool) -> None:
    assert snap.decide(DecisionRequest.of(subject, resource, action)).allowed is allowed


def test_explain_allow_names_rule_source_and_role_path() -> None:
    d = snap.decide(DecisionRequest.of("alice", "api:ontologies:geo", "read"), explain=True)
    assert d.allowed and d.effect == "allow" and d.reason == "matched"
    assert d.rule is not None
    assert d.rule.values == ("viewer", "api:ontologies:*", "read", "allow")
    assert d.rule.source.startswith("policy.csv:")
    assert d.role_path == ("alice", "developer", "viewer")


def test_explain_deny_names_the_deny_rule() -> None:
    d = snap.decide(DecisionRequest.of("carol", "api:branches:main", "delete"), explain=True)
    assert not d.allowed and d.reason == "matched"
    assert d.rule is not None and d.rule.values[-1] == "deny"
    assert d.role_path[0] == "carol"


def test_explain_no_match() -> None:
    d = snap.decide(DecisionRequest.of("mallory", "api:schemas", "read"), explain=True)
    assert not d.allowed and d.rule is None and d.reason == "no_match" and d.role_path == ()


def test_implicit_roles_and_scopes() -> None:
    assert snap.implicit_roles("carol") == ["admin", "developer", "viewer"]
    scopes = snap.allowed_scopes("bob")
    assert "api:schemas:read" in scopes and not any(s.endswith(":write") for s in scopes)


def test_unknown_subjects_do_not_grow_the_role_graph() -> None:
    graph = snap.roles["g"]
    before = len(graph.members())
    for i in range(1000):
        snap.decide(DecisionRequest.of(f"stranger-{i}", "api:schemas", "read"))
    assert len(graph.members()) == before
