"""Entities compare as their id for RBAC and expose type and properties for ABAC."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from app.policy.request import DecisionRequest, Entity, MissingAttribute


def test_entity_is_its_id_for_comparison_and_hashing() -> None:
    e = Entity("alice", "user", {"department": "eng"}, kind="subject")
    assert e == "alice"
    assert hash(e) == hash("alice")
    assert {"alice": 1}[e] == 1
    assert e.id == "alice"
    assert e.type == "user"


def test_properties_are_attributes_and_shadow_str_methods() -> None:
    # Any: the properties shadow str methods at run time, which mypy cannot see.
    e: Any = Entity("doc-1", "document", {"owner": "bob", "title": "Plan", "count": 3})
    assert e.owner == "bob"
    assert e.title == "Plan"  # not str.title
    assert e.count == 3  # not str.count
    assert e.upper() == "DOC-1"  # other str methods still work


def test_nested_properties_and_lists() -> None:
    e = Entity("doc", properties={"owner": {"team": "core"}, "tags": ["a", "b"]})
    assert e.owner.team == "core"
    assert "a" in e.tags


def test_missing_property_names_owner_and_property() -> None:
    e = Entity("doc", kind="resource")
    with pytest.raises(MissingAttribute) as info:
        _ = e.owner
    assert (info.value.owner, info.value.name) == ("resource", "owner")


def test_entity_survives_pickle() -> None:
    e = Entity("doc", "document", {"owner": "bob"}, kind="resource")
    back = pickle.loads(pickle.dumps(e))
    assert back == "doc" and back.owner == "bob" and back.type == "document"


def test_fingerprint_covers_every_property_and_type() -> None:
    base = DecisionRequest.of("alice", "api:schemas", "write")
    same = DecisionRequest.of("alice", "api:schemas", "write")
    assert base.fingerprint() == same.fingerprint()
    with_props = DecisionRequest(
        subject=Entity("alice", properties={"department": "eng"}),
        resource=Entity("api:schemas"),
        action=Entity("write"),
    )
    other_props = DecisionRequest(
        subject=Entity("alice", properties={"department": "ops"}),
        resource=Entity("api:schemas"),
        action=Entity("write"),
    )
    typed = DecisionRequest(
        subject=Entity("alice", "user"), resource=Entity("api:schemas"), action=Entity("write")
    )
    prints = {r.fingerprint() for r in (base, with_props, other_props, typed)}
    assert len(prints) == 4
    assert DecisionRequest.of("a", "b", "c", "d").fingerprint() != base.fingerprint()
