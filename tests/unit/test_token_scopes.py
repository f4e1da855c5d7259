"""Scopes: parsing, what covers what, what a subject is granted, which path decides."""

from __future__ import annotations

import pytest

from app.security.principal import Principal
from app.tokens.checks import from_scope
from app.tokens.scopes import ScopeResolver, covers, holds_scope, parse_scope, split_scope
from tests.support.policies import SHIPPED, snapshot_of

snap = snapshot_of(SHIPPED)


def test_parse_scope() -> None:
    assert parse_scope(None) is None and parse_scope("  ") is None
    assert parse_scope("a:b  c:d a:b") == ("a:b", "c:d")
    for bad in ('a"b', "a\\b", "é:read"):
        with pytest.raises(ValueError):
            parse_scope(bad)
    with pytest.raises(ValueError):
        parse_scope(" ".join(f"s{i}:r" for i in range(201)))


def test_split_scope_uses_the_last_colon() -> None:
    assert split_scope("api:branches:*:delete") == ("api:branches:*", "delete")
    assert split_scope("nocolon") is None and split_scope(":x") is None


@pytest.mark.parametrize(
    ("granted", "wanted", "expected"),
    [
        ("api:schemas:read", "api:schemas:read", True),
        ("api:branches:*:write", "api:branches:main:write", True),
        ("api:branches:*:write", "api:branches:main:read", False),
        ("api:*:*", "api:audit:read", True),
        ("*", "anything:at:all", True),
        ("api:branches:*:read", "api:audit:read", False),  # `:name` is not a parameter here
        ("api:schemas:read", "api:schemas:geo:read", False),  # exact never covers more
        ("/api/:id:read", "/api/42:read", True),  # URL paths use keyMatch2
        ("/api/*:get", "/api/a/b:get", True),
        ("/api/:id:read", "/api/42/x:read", False),
    ],
)
def test_covers(granted: str, wanted: str, expected: bool) -> None:
    assert covers(granted, wanted) is expected


def test_grant_without_request_is_everything_allowed() -> None:
    resolver = ScopeResolver()
    scope = resolver.grant(snap, "alice", requested=None, client_allows=None)
    assert scope == tuple(snap.allowed_scopes("alice"))
    assert resolver.allowed(snap, "alice") is resolver.allowed(snap, "alice")  # cached


def test_grant_intersects_request_and_client() -> None:
    resolver = ScopeResolver()
    assert resolver.grant(
        snap,
        "alice",
        requested=["api:schemas:write", "api:branches:x:delete", "api:branches:main:delete"],
        client_allows=None,
    ) == ("api:schemas:write", "api:branches:x:delete")  # the deny carve-out is refused
    assert resolver.grant(snap, "alice", requested=None, client_allows=["api:*:read"]) == tuple(
        s for s in snap.allowed_scopes("alice") if s.endswith(":read")
    )
    # a concrete client scope is granted when a broader pattern of the user's allows it
    assert resolver.grant(snap, "carol", requested=None, client_allows=["api:schemas:read"]) == (
        "api:schemas:read",
    )
    assert resolver.grant(snap, "bob", requested=["api:schemas:write"], client_allows=None) == ()
    assert resolver.grant(snap, "mallory", requested=None, client_allows=None) == ()


@pytest.mark.parametrize(
    ("scope", "resource", "action", "domain", "path", "allowed"),
    [
        (("api:schemas:read",), "api:schemas", "read", None, "token_scope", True),
        (("api:branches:*:write",), "api:branches:main", "write", None, "engine", None),
        (("api:schemas:read",), "api:schemas", "write", None, "token_scope", False),
        ((), "api:schemas", "read", None, "token_scope", False),
        (None, "api:schemas", "read", None, "engine", None),
        (("api:schemas:read",), "api:schemas", "read", "tenant-1", "engine", None),
    ],
)
def test_from_scope(
    scope: tuple[str, ...] | None,
    resource: str,
    action: str,
    domain: str | None,
    path: str,
    allowed: bool | None,
) -> None:
    verdict = from_scope(scope, resource=resource, action=action, domain=domain)
    assert (verdict.path, verdict.allowed) == (path, allowed)


def test_a_scope_is_held_from_the_token_or_else_from_the_policy() -> None:
    snapshot = snapshot_of(SHIPPED)
    scoped = Principal("bob", "bearer", scopes=frozenset({"api:branches:*:read"}), scoped=True)
    assert holds_scope(scoped, "api:branches:main:read", snapshot)
    assert not holds_scope(scoped, "api:ontologies:write", snapshot)  # the token bounds it
    unscoped = Principal("alice", "bearer")  # v1 token: the served policy decides
    assert holds_scope(unscoped, "api:ontologies:write", snapshot)
    assert not holds_scope(Principal("bob", "bearer"), "api:ontologies:write", snapshot)
    assert not holds_scope(Principal("alice", "api_key"), "api:ontologies:write", snapshot)
    assert not holds_scope(unscoped, "no-colon-scope", snapshot)  # unreadable: not held
