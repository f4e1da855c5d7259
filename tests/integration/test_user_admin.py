"""The user admin API: create, read, update roles and attributes, disable, unlock, delete;
validated like the CLI, audited, one policy revision per change, tokens cut off."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.store.models import AuditEvent, PolicyState
from tests.support.tokens import AppFactory, TokenApp

KEY = "user-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
USERS = "/api/v1/admin/users"
DORA: dict[str, Any] = {
    "username": "dora",
    "password": "a good long password",
    "roles": ["developer"],
    "attributes": {"department": "payments", "level": 3},
}


async def _db_counts(env: TokenApp) -> tuple[int, int]:
    async with env.services.db.sessions() as s:
        audit = await s.scalar(select(func.count()).select_from(AuditEvent))
        revision = await s.scalar(select(PolicyState.revision))
    return int(audit or 0), int(revision or 0)


async def _allowed(env: TokenApp, subject: str) -> bool:
    r = await env.http.post(
        "/api/v1/authz/check",
        json={"subject": subject, "resource": "api:schemas", "action": "write"},
    )
    return bool(r.json()["allowed"])


async def test_create_read_update_delete(token_app_factory: AppFactory, database_url: str) -> None:
    async with token_app_factory(database_url=database_url, admin_api_key=KEY) as env:
        audit, revision = await _db_counts(env)
        created = await env.http.post(USERS, json=DORA, headers=ADMIN)
        assert created.status_code == 201, created.text
        body: dict[str, Any] = created.json()
        assert body["roles"] == ["developer"] and body["live"] is True
        assert body["attributes"] == {"department": "payments", "level": 3}
        assert body["policy_revision"] == revision + 1
        assert await _db_counts(env) == (audit + 1, revision + 1)
        assert await _allowed(env, "dora") is True  # live on this instance at once
        tokens = await env.login("dora", DORA["password"])

        got = await env.http.get(f"{USERS}/dora", headers=ADMIN)
        assert got.status_code == 200 and got.json()["id"] == body["id"]

        patched = await env.http.patch(
            f"{USERS}/dora", json={"roles": ["viewer"], "attributes": {"level": 4}}, headers=ADMIN
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["roles"] == ["viewer"]
        assert patched.json()["attributes"] == {"level": 4}
        assert await _allowed(env, "dora") is False

        deleted = await env.http.delete(f"{USERS}/dora", headers=ADMIN)
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        assert (await env.http.get(f"{USERS}/dora", headers=ADMIN)).status_code == 404
        await env.login("dora", DORA["password"], expect=401)
        result = await env.validate(tokens["access_token"])
        assert result["valid"] is False
        actions = await _audit_actions(env)
        user_actions = [a for a in actions if a.startswith("user.")]
        assert user_actions[-3:] == ["user.created", "user.updated", "user.deleted"]


async def _audit_actions(env: TokenApp) -> list[str]:
    async with env.services.db.sessions() as s:
        rows = await s.scalars(select(AuditEvent.action).order_by(AuditEvent.id))
        return [str(a) for a in rows]


async def test_bad_input_is_refused_before_any_write(token_app_factory: AppFactory) -> None:
    async with token_app_factory(admin_api_key=KEY) as env:
        before = await _db_counts(env)
        cases = [
            ({**DORA, "username": "bad name"}, 422, "REQ_001"),
            ({**DORA, "username": "a,b"}, 422, "REQ_001"),
            ({**DORA, "password": "short"}, 422, "REQ_001"),
            ({**DORA, "roles": ["no-such-role"]}, 404, "RBAC_001"),
            ({**DORA, "username": "alice"}, 409, "REQ_006"),
        ]
        for body, status, code in cases:
            r = await env.http.post(USERS, json=body, headers=ADMIN)
            assert r.status_code == status, (body, r.text)
            assert r.json()["error"]["code"] == code
        assert await _db_counts(env) == before
        anonymous = await env.http.post(USERS, json=DORA)
        assert anonymous.status_code == 401
        user_token = (await env.login("alice"))["access_token"]
        denied = await env.http.post(
            USERS, json=DORA, headers={"Authorization": f"Bearer {user_token}"}
        )
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "RBAC_002"


async def test_disable_and_unlock(token_app_factory: AppFactory) -> None:
    async with token_app_factory(admin_api_key=KEY, login_free_failures=2) as env:
        # failures past the free ones make bob wait 1 s, 2 s, 4 s...: soon an attempt lands
        # inside the wait, however slow this machine
        for _ in range(12):
            answer = await env.http.post(
                "/api/v1/auth/login", json={"username": "bob", "password": "wrong password"}
            )
            if answer.status_code == 429:
                break
            assert answer.status_code == 401, answer.text
        assert answer.status_code == 429 and answer.json()["error"]["code"] == "RATE_001"
        unlocked = await env.http.post(f"{USERS}/bob/unlock", headers=ADMIN)
        assert unlocked.status_code == 200, unlocked.text
        tokens = await env.login("bob")

        disabled = await env.http.post(f"{USERS}/bob/disable", headers=ADMIN)
        assert disabled.status_code == 200 and disabled.json()["disabled"] is True
        await env.login("bob", expect=401)
        assert (await env.validate(tokens["access_token"]))["valid"] is False
        assert (await env.http.post(f"{USERS}/nobody/disable", headers=ADMIN)).status_code == 404
        actions = await _audit_actions(env)
        assert "user.unlocked" in actions and "user.disabled" in actions


async def test_create_is_idempotent_by_key(token_app_factory: AppFactory) -> None:
    async with token_app_factory(admin_api_key=KEY) as env:
        headers = {**ADMIN, "Idempotency-Key": "create-dora"}
        first = await env.http.post(USERS, json=DORA, headers=headers)
        again = await env.http.post(USERS, json=DORA, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
