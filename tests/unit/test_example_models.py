"""One request shape serves RBAC, ABAC and domain models (policies/examples/)."""

from __future__ import annotations

import pytest

from app.errors import RequestInvalid
from app.policy.request import DecisionRequest, Entity
from tests.support.policies import EXAMPLES, snapshot_of

abac = snapshot_of(EXAMPLES / "abac")
domains = snapshot_of(EXAMPLES / "rbac_with_domains")


def doc(owner: str, department: str = "eng", id: str = "doc:1") -> Entity:
    return Entity(id, "document", {"owner": owner, "department": department}, kind="resource")


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


def test_missing_property_is_a_clear_request_error() -> None:
    request = DecisionRequest(
        user("alice"), Entity("doc:1", "document", kind="resource"), Entity("edit")
    )
    with pytest.raises(RequestInvalid) as info:
        abac.decide(request)
    assert info.value.details["missing"] == "resource.owner"


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
