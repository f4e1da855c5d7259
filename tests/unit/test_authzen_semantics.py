"""AuthZEN batch semantics that live in the domain (`app.decisions.authzen`), not in HTTP."""

from __future__ import annotations

from typing import Any

from app.decisions.authzen import evaluations_of

DEFAULTS = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "read"},
    "resource": None,
    "context": {"ip": "10.0.0.1"},
}


def test_each_item_is_read_over_the_top_level_values() -> None:
    items: list[dict[str, Any]] = [
        {"resource": {"type": "doc", "id": "1"}},
        {"resource": {"type": "doc", "id": "2"}, "action": {"name": "write"}, "context": None},
    ]
    first, second = evaluations_of(DEFAULTS, items, tenant=None)
    assert first == {
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "read"},
        "resource": {"type": "doc", "id": "1"},
        "context": {"ip": "10.0.0.1"},
    }
    assert second["action"] == {"name": "write"}  # the item's own value wins
    assert second["context"] == {"ip": "10.0.0.1"}  # null means absent: the default stands
    assert "resource" not in evaluations_of(DEFAULTS, [{}], tenant=None)[0]


def test_no_items_is_one_evaluation_of_the_top_level_values() -> None:
    assert evaluations_of(DEFAULTS, None, tenant=None) == [
        {k: v for k, v in DEFAULTS.items() if v is not None}
    ]
    assert evaluations_of(DEFAULTS, [], tenant=None) == evaluations_of(DEFAULTS, None, tenant=None)


def test_in_a_tenant_no_evaluation_can_leave_it() -> None:
    items: list[dict[str, Any]] = [
        {"context": {"domain": "tenant-b", "ip": "10.0.0.2"}},
        {},
        {"context": None},
    ]
    contexts = [each["context"] for each in evaluations_of(DEFAULTS, items, tenant="tenant-a")]
    assert contexts == [
        {"domain": "tenant-a", "ip": "10.0.0.2"},
        {"domain": "tenant-a", "ip": "10.0.0.1"},
        {"domain": "tenant-a", "ip": "10.0.0.1"},
    ]
    bare = evaluations_of({"subject": {"type": "user", "id": "a"}}, None, tenant="tenant-a")
    assert bare[0]["context"] == {"domain": "tenant-a"}
