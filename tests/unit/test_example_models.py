"""One request shape serves RBAC, ABAC and domain models (policies/examples/)."""

from __future__ import annotations

import pytest

from app.errors import RequestInvalid
from app.policy.request import DecisionRequest, Entity
from app.policy.snapshot import PolicySnapshot
from app.policy.sources import FileRuleSource, PolicyLoader
from tests.support.policies import EXAMPLES, snapshot_of

abac = snapshot_of(EXAMPLES / "abac")
domains = snapshot_of(EXAMPLES / "rbac_with_domains")


def doc(owner: str, department: str = "eng", id: str = "doc:1") -> Entity:
    return Entity.typed("doc", id, {"owner": owner, "department": department}, kind="resource")


def user(id: str, department: str = "eng") -> Entity:
    return Entity(id, "user", {"department": department}, kind="subject")


def ask(subject: Entity, resource: Entity, action: str) -> bool:
    request = DecisionRequest(subject, resource, Entity(action, kind="action"))
    return abac.decide(request).allowed


def test_owner_may_edit_own_document() -> None:
    assert ask(user("alice"), doc("alice"), "edit")
    assert ask(user("alice"), doc("alice"), "delete")


def test_others_may_not_edit() -> None:
    assert not ask(user("bob"), doc("alice"), "edit")


def test_same_department_may_read_only() -> None:
    assert ask(user("bob", "eng"), doc("alice", "eng"), "read")
    assert not ask(user("bob", "ops"), doc("alice", "eng"), "read")


def test_rbac_rules_still_apply_in_the_abac_model() -> None:
    assert ask(user("erin", "legal"), doc("alice", "eng"), "archive")
    assert not ask(user("frank", "legal"), doc("alice", "eng"), "archive")


def test_missing_property_makes_the_rule_not_match_never_an_error() -> None:
    bare = Entity.typed("doc", "doc:1", kind="resource")  # no owner, no department
    alice = DecisionRequest(user("alice"), bare, Entity("edit", kind="action"))
    decision = abac.decide(alice, explain=True)
    assert decision.allowed is False
    assert decision.explain()["missing_properties"] == ["resource.owner"]
    # A branch that needs no property still matches: erin archives through her role.
    erin = DecisionRequest(user("erin", "legal"), bare, Entity("archive", kind="action"))
    explained = abac.decide(erin, explain=True)
    assert explained.allowed is True
    assert explained.rule is not None and explained.rule.values[0] == "records-manager"
    assert "resource.owner" in explained.missing


def test_missing_property_answer_does_not_depend_on_rule_order() -> None:
    model, rules = PolicyLoader(EXAMPLES / "abac", [FileRuleSource(EXAMPLES / "abac")]).read()
    reordered = PolicySnapshot.build(model, list(reversed(rules)), revision=1)
    bare = Entity.typed("doc", "doc:1", kind="resource")
    for who, action in (("erin", "archive"), ("erin", "read"), ("alice", "edit"), ("bob", "read")):
        request = DecisionRequest(user(who, "legal"), bare, Entity(action, kind="action"))
        assert abac.decide(request).allowed == reordered.decide(request).allowed


@pytest.mark.parametrize(
    ("subject", "domain", "resource", "action", "allowed"),
    [
        ("alice", "tenant-a", "api:ontologies:geo", "write", True),
        ("alice", "tenant-a", "api:ontologies:geo", "read", True),  # editor -> reader in a
        ("alice", "tenant-b", "api:ontologies:geo", "write", False),  # only reader in b
        ("alice", "tenant-b", "api:ontologies:geo", "read", True),
        ("alice", "tenant-c", "api:ontologies:geo", "read", False),
    ],
)
def test_domains(subject: str, domain: str, resource: str, action: str, allowed: bool) -> None:
    request = DecisionRequest.of(subject, resource, action, domain)
    assert domains.decide(request).allowed is allowed


def test_domain_is_required_by_domain_models_and_refused_elsewhere() -> None:
    with pytest.raises(RequestInvalid, match="needs a domain"):
        domains.decide(DecisionRequest.of("alice", "api:ontologies:geo", "read"))
    with pytest.raises(RequestInvalid, match="no domains"):
        abac.decide(DecisionRequest.of("alice", "doc:1", "read", "tenant-a"))


def test_domain_explain_role_path() -> None:
    d = domains.decide(
        DecisionRequest.of("alice", "api:ontologies:geo", "read", "tenant-a"), explain=True
    )
    assert d.role_path == ("alice", "editor", "reader")
