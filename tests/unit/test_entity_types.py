"""Ids are scoped by type: `{"type": "group", "id": "alice"}` is never user alice."""

from __future__ import annotations

import pytest

from app.policy.request import DecisionRequest, Entity, key_type, policy_key
from tests.support.policies import SHIPPED, snapshot_of

shipped = snapshot_of(SHIPPED)


@pytest.mark.parametrize(
    ("type", "id", "key"),
    [
        (None, "alice", "alice"),  # plain strings are keys as written
        (None, "client:web", "client:web"),
        ("user", "alice", "alice"),
        ("group", "alice", "group:alice"),
        ("client", "web", "client:web"),
        ("api", "api:schemas", "api:schemas"),  # already scoped by its type
        ("user", "client:web", "user:client:web"),  # a user id never takes a client's key
        ("user", "user:x", "user:x"),
        ("todo", "42", "todo:42"),
    ],
)
def test_policy_keys(type: str | None, id: str, key: str) -> None:
    assert policy_key(type, id) == key


def test_key_types() -> None:
    assert [key_type(k) for k in ("alice", "group:alice", "client:web")] == [
        "user",
        "group",
        "client",
    ]


def ask(subject: Entity, resource: str, action: str) -> bool:
    return shipped.decide(DecisionRequest.of(subject, resource, action)).allowed


def test_group_alice_does_not_get_alice_permissions() -> None:
    assert ask(Entity.typed("user", "alice", kind="subject"), "api:schemas", "write")
    assert ask(Entity("alice", kind="subject"), "api:schemas", "write")
    assert not ask(Entity.typed("group", "alice", kind="subject"), "api:schemas", "write")
    assert not ask(Entity.typed("group", "alice", kind="subject"), "api:schemas", "read")
    # A user id that looks like another type's key stays a user.
    assert not ask(
        Entity.typed("user", "client:ci-pipeline", kind="subject"), "api:schemas", "read"
    )
    assert ask(Entity.typed("client", "ci-pipeline", kind="subject"), "api:schemas", "read")
