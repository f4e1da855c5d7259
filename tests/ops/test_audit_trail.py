"""The audit trail: token lifecycle, failed logins, alerts, retention, export; policy status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from app.audit.note import mask_username
from app.cli import cli
from app.main import create_app
from app.store.audit_log import AuditLog
from app.store.database import Database
from app.store.models import AuditEvent
from tests.conftest import SettingsFactory
from tests.support.apps import running
from tests.support.tokens import PASSWORD, AppFactory, bearer
from tests.support.waiting import wait_for

KEY = "audit-trail-admin-key-0123456789"
ADMIN = {"X-API-Key": KEY}


async def _events(env: Any, **params: Any) -> list[dict[str, Any]]:
    r = await env.http.get("/api/v1/audit", params={"limit": 500, **params}, headers=ADMIN)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _until(env: Any, count: int, **params: Any) -> list[dict[str, Any]]:
    async def enough() -> bool:
        return len(await _events(env, **params)) >= count

    await wait_for(enough, timeout=20)
    return await _events(env, **params)


async def test_token_lifecycle_and_failed_logins_are_audited(
    token_app_factory: AppFactory,
) -> None:
    async with token_app_factory(admin_api_key=KEY) as env:
        body = await env.login("alice")
        await env.login("alice", password=PASSWORD + "x", expect=401)
        r = await env.http.post(
            "/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]}
        )
        assert r.status_code == 200, r.text
        refreshed = r.json()
        r = await env.http.post(
            "/api/v1/auth/logout",
            json={"refresh_token": refreshed["refresh_token"]},
            headers=bearer(refreshed["access_token"]),
        )
        assert r.status_code in (200, 204), r.text

        issued = await _until(env, 1, action="token.issued", subject="alice")
        assert issued[0]["actor"] == "alice" and issued[0]["details"]["grant"] == "password"
        assert issued[0]["details"]["address"] == "127.0.0.1"
        refresh = await _until(env, 1, action="token.refreshed", subject="alice")
        assert refresh[0]["details"]["grant"] == "refresh_token"
        revoked = await _until(env, 1, action="token.revoked", subject="alice")
        assert revoked[0]["details"]["reason"] == "logout"

        failed = await _until(env, 1, action="auth.login.failed")
        masked = mask_username("alice")
        assert failed[0]["details"] == {
            "username": masked,
            "reason": "bad_password",
            "address": "127.0.0.1",
        }
        assert "alice" not in json.dumps(failed[0])  # the username never appears in clear

        # a permission change cuts alice's tokens off: audited too
        r = await env.http.put("/api/v1/roles/developer/members/bob", headers=ADMIN)
        assert r.status_code == 201, r.text
        r = await env.http.delete("/api/v1/roles/developer/members/bob", headers=ADMIN)
        assert r.status_code == 200, r.text
        cut = await _until(env, 2, action="token.cut_off", subject="bob")
        assert cut[0]["details"]["subjects"] == ["bob"]
        assert cut[0]["details"]["reason"] == "permissions_changed"
        roles = await _events(env, action="role.member.*")
        assert [e["action"] for e in roles] == ["role.member.removed", "role.member.added"]
        assert roles[0]["before"] == {"ptype": "g", "rule": ["bob", "developer"]}
        assert roles[0]["after"] is None and roles[1]["after"] == roles[0]["before"]

        # pagination by cursor walks every event exactly once
        total = await _events(env)
        seen: list[int] = []
        cursor: int | None = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor is not None:
                params["cursor"] = cursor
            page = (await env.http.get("/api/v1/audit", params=params, headers=ADMIN)).json()
            seen += [e["id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [e["id"] for e in total]

        # export: JSON lines, oldest first, same filters
        r = await env.http.get("/api/v1/audit/export", params={"action": "token.*"}, headers=ADMIN)
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(x) for x in r.text.splitlines()]
        assert [x["action"] for x in lines][:2] == ["token.issued", "token.refreshed"]
        assert [x["id"] for x in lines] == sorted(x["id"] for x in lines)


async def test_login_failure_bursts_raise_alerts_per_account_and_address(
    token_app_factory: AppFactory,
) -> None:
    async with token_app_factory(
        admin_api_key=KEY,
        login_free_failures=100,  # the per-account back-off would answer 429 before the alert
        alert_login_failures_per_account=3,
        alert_login_failures_per_address=5,
        rate_limit_login_ip="1000/minute",
        rate_limit_login_user="1000/minute",
    ) as env:
        for _ in range(3):
            await env.login("bob", password="wrong-password", expect=401)
        for name in ("nobody1", "nobody2"):
            await env.login(name, password="wrong-password", expect=401)
        alerts = await _until(env, 2, action="alert.login_failure_burst")
        scopes = {a["details"]["scope"]: a for a in alerts}
        assert scopes["account"]["details"]["username"] == mask_username("bob")
        assert scopes["account"]["details"]["failures"] == 3
        assert scopes["address"]["details"]["address"] == "127.0.0.1"
        assert scopes["address"]["source"] == "system"
        for _ in range(3):  # inside the window: no second alert for the same key
            await env.login("bob", password="wrong-password", expect=401)
        metrics = (await env.http.get("/metrics")).text
        assert 'oms_auth_security_alerts_total{kind="login_failure_burst"} 2.0' in metrics
        assert len(await _events(env, action="alert.login_failure_burst")) == 2


async def test_mass_permission_changes_raise_an_alert(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(admin_api_key=KEY, alert_permission_changes=5))
    async with running(app) as client:
        for i in range(5):
            r = await client.post(
                "/api/v1/policies",
                json={"ptype": "p", "rule": [f"role{i}", "api:x", "read", "allow"]},
                headers=ADMIN,
            )
            assert r.status_code in (200, 201), r.text

        async def alerted(c: Any = client) -> bool:
            r = await c.get("/api/v1/audit?action=alert.*", headers=ADMIN)
            return bool(r.json()["items"])

        await wait_for(alerted, timeout=20)
        r = await client.get("/api/v1/audit?action=alert.*", headers=ADMIN)
        alert = r.json()["items"][0]
        assert alert["action"] == "alert.mass_permission_change"
        assert alert["details"]["changes"] == 5
        metrics = (await client.get("/metrics")).text
        assert 'oms_auth_security_alerts_total{kind="mass_permission_change"} 1.0' in metrics


async def test_retention_purges_only_old_events_and_the_table_stays_append_only(
    database_url: str,
) -> None:
    db = Database(database_url)
    old = datetime.now(UTC) - timedelta(days=40)
    try:
        async with db.transaction() as s:
            for i in range(3):
                s.add(AuditEvent(occurred_at=old, actor="x", action=f"old.{i}", source="cli"))
            s.add(AuditEvent(occurred_at=datetime.now(UTC), actor="x", action="new", source="cli"))
        with pytest.raises(Exception, match="append-only"):
            async with db.transaction() as s:
                await s.execute(delete(AuditEvent))
        removed = await AuditLog().purge(db, older_than_days=30)
        assert removed == 3
        async with db.sessions() as s:
            left = (await s.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all()
        assert list(left) == ["new", "audit.purged"]
        with pytest.raises(Exception, match="append-only"):  # the marker is gone again
            async with db.transaction() as s:
                await s.execute(delete(AuditEvent))
        async with db.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(AuditEvent)) == 2
    finally:
        await db.close()


def test_cli_exports_json_lines_and_purges(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMS_AUTH_DATABASE_URL", sqlite_url)
    import asyncio

    async def seed() -> None:
        db = Database(sqlite_url)
        try:
            async with db.transaction() as s:
                await AuditLog().record(
                    s,
                    actor="cli:me",
                    action="user.created",
                    source="cli",
                    target="user:dora",
                    after={"username": "dora"},
                )
        finally:
            await db.close()

    asyncio.run(seed())
    out = CliRunner().invoke(cli, ["audit", "export", "--subject", "dora"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert [r["action"] for r in rows] == ["user.created"] and rows[0]["after"][
        "username"
    ] == "dora"
    purge = CliRunner().invoke(cli, ["audit", "purge", "--days", "1"])
    assert purge.exit_code == 0 and "removed 0" in purge.output
    none = CliRunner().invoke(cli, ["audit", "purge"])
    assert none.exit_code == 2 and "OMS_AUTH_AUDIT_RETENTION_DAYS" in none.output


async def test_policy_status_reports_a_rejected_edit_with_file_line_and_code(
    make_settings: SettingsFactory, policy_dir: Path
) -> None:
    app = create_app(make_settings(policy_dir=policy_dir, admin_api_key=KEY))
    csv = policy_dir / "policy.csv"
    async with running(app) as client:
        status = (await client.get("/api/v1/policies/status", headers=ADMIN)).json()
        revision = status["revision"]
        assert status["status"] == "ok" and status["rejected"] is None
        assert status["sources"].startswith("files+db") and status["trigger"] == "startup"
        ready = (await client.get("/readyz")).json()["checks"]["policy"]
        assert ready["newer_edit_rejected"] is False and ready["revision"] == revision

        lines = csv.read_text().splitlines()
        csv.write_text("\n".join([*lines, "g, viewer, admin"]) + "\n")  # a role cycle
        r = await client.post("/api/v1/policies/reload", headers=ADMIN)
        assert r.status_code == 422
        status = (await client.get("/api/v1/policies/status", headers=ADMIN)).json()
        assert status["status"] == "newer_edit_rejected" and status["revision"] == revision
        rejected = status["rejected"]
        assert rejected["file"] == "policy.csv" and rejected["line"] == len(lines) + 1
        assert rejected["code"].startswith("PL") and rejected["trigger"] == "reload"
        ready = await client.get("/readyz")
        assert ready.status_code == 200  # the previous policy still serves
        assert ready.json()["checks"]["policy"]["rejected"]["line"] == len(lines) + 1
        assert (await client.get("/api/v1/policies/status")).status_code == 401

        csv.write_text("\n".join(lines) + "\n")  # fixed: the rejection is no longer pending
        assert (await client.post("/api/v1/policies/reload", headers=ADMIN)).status_code == 200
        status = (await client.get("/api/v1/policies/status", headers=ADMIN)).json()
        # the restored content is the content the revision labels: it keeps that revision
        assert status["status"] == "ok" and status["revision"] == revision
        assert status["rejected"] is None and status["last_rejection"]["code"] == rejected["code"]
