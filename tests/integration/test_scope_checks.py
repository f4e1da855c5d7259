"""`POST /api/v2/authz/check` (which path decided) and bearer tokens as API principals."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from app.api.principals import CurrentPrincipal, PolicyAdmin
from tests.support.tokens import AppFactory, TokenApp, bearer


async def _check(env: TokenApp, token: str, resource: str, action: str, **extra: Any) -> Any:
    r = await env.http.post(
        "/api/v2/authz/check",
        json={"resource": resource, "action": action, **extra},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    ("resource", "action", "allowed", "path"),
    [
        ("api:schemas", "write", True, "token_scope"),  # exact scope: no engine call
        ("api:branches:feature-1", "write", True, "engine"),  # only a pattern covers it
        ("api:branches:main", "write", False, "engine"),  # the pattern's deny exception
        ("api:audit", "read", False, "token_scope"),  # nothing in the scope covers it
    ],
)
async def test_v2_token_paths(
    token_app: TokenApp, resource: str, action: str, allowed: bool, path: str
) -> None:
    token = (await token_app.login("alice"))["access_token"]
    decisions = token_app.services.metrics.decisions
    before = sum(m.get() for m in _samples(decisions))
    result = await _check(token_app, token, resource, action)
    assert (result["allowed"], result["decided_by"]) == (allowed, path)
    assert result["subject"] == "alice" and result["reason"]
    engine_calls = sum(m.get() for m in _samples(decisions)) - before
    assert engine_calls == (1 if path == "engine" else 0)
    if path == "engine":
        assert isinstance(result["policy_revision"], int)


def _samples(counter: Any) -> list[Any]:
    return [child._value for child in counter._metrics.values()]


async def test_narrowed_token_never_exceeds_its_scope(token_app: TokenApp) -> None:
    token = (await token_app.login("alice", scope="api:schemas:read"))["access_token"]
    write = await _check(token_app, token, "api:schemas", "write")
    assert write["allowed"] is False and write["decided_by"] == "token_scope"
    read = await _check(token_app, token, "api:schemas", "read")
    assert read["allowed"] is True and read["decided_by"] == "token_scope"


async def test_v1_token_and_domains_go_to_the_engine(token_app: TokenApp) -> None:
    token = (await token_app.login("alice", version="v1"))["access_token"]
    result = await _check(token_app, token, "api:schemas", "write")
    assert result == {**result, "allowed": True, "decided_by": "engine"}
    denied = await _check(token_app, token, "api:audit", "read")
    assert denied["allowed"] is False and denied["decided_by"] == "engine"


async def test_check_needs_a_valid_bearer(token_app: TokenApp) -> None:
    r = await token_app.http.post(
        "/api/v2/authz/check", json={"resource": "api:schemas", "action": "read"}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "AUTH_001"
    token = (await token_app.login("alice"))["access_token"]
    bad = await token_app.http.post(
        "/api/v2/authz/check", json={"resource": "", "action": "read"}, headers=bearer(token)
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "REQ_001"


async def test_bearer_tokens_are_principals(token_app_factory: AppFactory) -> None:
    async with token_app_factory() as env:
        app: FastAPI = env.app

        @app.get("/test/whoami")
        async def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
            return {"subject": principal.subject, "method": principal.method}

        @app.get("/test/admin")
        async def admin(principal: PolicyAdmin) -> dict[str, Any]:
            return {"subject": principal.subject}

        alice = (await env.login("alice"))["access_token"]
        carol = (await env.login("carol"))["access_token"]
        me = await env.http.get("/test/whoami", headers=bearer(alice))
        assert me.json() == {"subject": "alice", "method": "bearer"}
        assert (await env.http.get("/test/admin", headers=bearer(alice))).status_code == 403
        assert (await env.http.get("/test/admin", headers=bearer(carol))).status_code == 200
        expired_like = await env.http.get("/test/whoami", headers=bearer(alice + "x"))
        assert expired_like.status_code == 401
        assert expired_like.json()["error"]["code"] == "AUTH_004"
        basic = await env.http.get("/test/whoami", headers={"Authorization": "Basic eDp5"})
        assert basic.status_code == 401 and basic.json()["error"]["code"] == "AUTH_001"


async def test_policy_scope_makes_an_admin(token_app_factory: AppFactory, policy_dir: Any) -> None:
    csv = policy_dir / "policy.csv"
    csv.write_text(csv.read_text() + "\np, auditor, authz:policies, write, allow\n")
    async with token_app_factory(policy_dir=policy_dir, users={"dave": []}) as env:

        @env.app.get("/test/admin")
        async def admin(principal: PolicyAdmin) -> dict[str, Any]:
            return {"subject": principal.subject}

        token = (await env.login("dave"))["access_token"]
        r = await env.http.get("/test/admin", headers=bearer(token))
        assert r.status_code == 200 and r.json() == {"subject": "dave"}
