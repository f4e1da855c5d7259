"""Answers that do not mislead someone learning the API from its responses."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert

from app.store.database import sync_url
from app.store.models import CasbinRule
from app.tokens.service import disable_client
from tests.support.tokens import AppFactory

pytestmark = pytest.mark.integration

KEY = "newcomer-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}


async def test_deletes_say_removed_not_created(token_app_factory: AppFactory) -> None:
    async with token_app_factory(admin_api_key=KEY) as env:
        rule = {"ptype": "p", "rule": ["auditor", "api:reports", "read", "allow"]}
        added = await env.http.post("/api/v1/policies", json=rule, headers=ADMIN)
        assert added.status_code == 201 and added.json()["created"] is True
        removed = await env.http.request("DELETE", "/api/v1/policies", json=rule, headers=ADMIN)
        assert removed.status_code == 200, removed.text
        body = removed.json()
        assert "created" not in body and body["removed"] is True
        assert body["rule"] == rule["rule"] and body["still_defined_in"] is None

        put = await env.http.put("/api/v1/roles/developer/members/erin", headers=ADMIN)
        assert put.status_code == 201
        gone = await env.http.delete("/api/v1/roles/developer/members/erin", headers=ADMIN)
        assert gone.status_code == 200 and "created" not in gone.json()
        assert gone.json()["removed"] is True


async def test_a_stored_copy_of_a_file_rule_can_be_removed(
    token_app_factory: AppFactory, sqlite_url: str, tmp_path: Path, policy_dir: Path
) -> None:
    """The knot of an earlier push: a rule in a file and in the table. Deleting the stored
    copy works, and the rule then lives only as long as its file line."""
    engine = create_engine(sync_url(sqlite_url))
    with engine.begin() as conn:
        conn.execute(insert(CasbinRule).values(ptype="g", v0="bob", v1="viewer"))
    engine.dispose()
    async with token_app_factory(admin_api_key=KEY, policy_dir=policy_dir) as env:
        member = await env.http.delete("/api/v1/roles/viewer/members/bob", headers=ADMIN)
        assert member.status_code == 200, member.text
        assert member.json()["still_defined_in"] == "policy.csv:40"
        again = await env.http.delete("/api/v1/roles/viewer/members/bob", headers=ADMIN)
        assert again.status_code == 409 and "policy.csv:40" in again.json()["error"]["message"]
        csv = policy_dir / "policy.csv"
        csv.write_text(csv.read_text().replace("g, bob, viewer\n", ""))
        await env.reload_policy()
        check = await env.http.post(
            "/api/v1/authz/check",
            json={"subject": "bob", "resource": "api:schemas", "action": "read"},
        )
        assert check.json()["allowed"] is False


async def test_a_disabled_client_is_told_so(token_app_factory: AppFactory) -> None:
    async with token_app_factory() as env:
        ok = await env.oauth("token", "web", {"grant_type": "client_credentials"})
        assert ok.status_code == 200, ok.text
        tokens = env.tokens.service
        await disable_client(
            "web",
            clients=env.tokens.clients,
            revocations=tokens.revocations,
            audit=None,
        )
        refused = await env.oauth("token", "web", {"grant_type": "client_credentials"})
        assert refused.status_code == 401
        body = refused.json()
        assert body["error"] == "invalid_client" and "is disabled" in body["error_description"]
        wrong = await env.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("web", "not-it")
        )
        assert wrong.status_code in (400, 401) and "disabled" not in wrong.text


async def test_form_body_to_a_json_route_gets_a_hint(token_app_factory: AppFactory) -> None:
    async with token_app_factory() as env:
        form = await env.http.post(
            "/api/v1/authz/check",
            data={"subject": "alice", "resource": "api:schemas", "action": "write"},
        )
        assert form.status_code == 422
        details = form.json()["error"]["details"]
        assert "application/x-www-form-urlencoded" in details["hint"]
        assert "content-type: application/json" in details["hint"]
        wrong_json = await env.http.post("/api/v1/authz/check", json={"subject": "alice"})
        assert wrong_json.status_code == 422 and "hint" not in wrong_json.json()["error"]["details"]


async def test_v2_check_refuses_a_subject_in_the_body(token_app_factory: AppFactory) -> None:
    async with token_app_factory() as env:
        token = (await env.login("bob"))["access_token"]
        r = await env.http.post(
            "/api/v2/authz/check",
            json={"subject": "carol", "resource": "api:policies", "action": "write"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 422
        (field,) = r.json()["error"]["details"]["fields"]
        assert field["field"] == "subject" and "/api/v1/authz/check" in field["message"]
