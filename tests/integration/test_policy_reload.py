"""`POST /api/v1/policies/reload`, the in-process watcher, and the audit trail they leave."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.errors import InvalidPolicy
from app.main import create_app
from tests.conftest import SettingsFactory
from tests.support.apps import running
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
CHECK = {"subject": "bob", "resource": "api:schemas", "action": "write"}


@pytest.fixture
def app(make_settings: SettingsFactory, policy_dir: Path) -> FastAPI:
    return create_app(make_settings(policy_dir=policy_dir, admin_api_key=KEY))


async def allowed(client: httpx.AsyncClient) -> bool:
    return bool((await client.post("/api/v1/authz/check", json=CHECK)).json()["allowed"])


async def test_reload_applies_a_valid_edit_and_refuses_an_invalid_one(
    app: FastAPI, policy_dir: Path
) -> None:
    csv = policy_dir / "policy.csv"
    async with running(app) as client:
        assert not await allowed(client)
        csv.write_text(csv.read_text() + "g, bob, developer\np, bob, api:dup, read, allow\n")
        r = await client.post("/api/v1/policies/reload", headers=ADMIN)
        assert r.status_code == 200, r.text
        assert r.json()["policy_revision"] == r.json()["previous_revision"] + 1
        assert await allowed(client)

        good = csv.read_text()
        csv.write_text(good + "p, bob, api:x, read\ng, viewer, admin\n")  # arity + cycle
        revision = app.state.services.engine.revision
        r = await client.post("/api/v1/policies/reload", headers=ADMIN)
        assert r.status_code == 422 and r.json()["error"]["code"] == "RBAC_003"
        findings = r.json()["error"]["details"]["findings"]
        lines = len(good.splitlines())
        assert [(f["file"], f["line"], f["code"]) for f in findings] == [
            ("policy.csv", lines + 1, "PL003"),
            ("policy.csv", lines + 2, "PL006"),
        ]
        assert app.state.services.engine.revision == revision
        assert await allowed(client)  # the previous policy keeps serving

        csv.write_text(good + "p, bob, api:dup, read, allow\n")  # a warning only
        r = await client.post("/api/v1/policies/reload", headers=ADMIN)
        assert r.status_code == 200
        assert [w["code"] for w in r.json()["warnings"]] == ["PL101"]

        metrics = (await client.get("/metrics")).text
        assert 'oms_auth_policy_reloads_total{result="rejected",trigger="reload"} 1.0' in metrics
        audit = (await client.get("/api/v1/audit?action=policy.reload*", headers=ADMIN)).json()
        actions = [e["action"] for e in audit["items"]]
        assert actions == ["policy.reloaded", "policy.reload.rejected", "policy.reloaded"]
        rejected = audit["items"][1]
        assert rejected["source"] == "api" and rejected["details"]["trigger"] == "reload"
        assert rejected["details"]["findings"][0]["code"] == "PL003"


async def test_watcher_reloads_in_process(make_settings: SettingsFactory, policy_dir: Path) -> None:
    settings = make_settings(policy_dir=policy_dir, admin_api_key=KEY, policy_watch=True)
    app = create_app(settings)
    csv = policy_dir / "policy.csv"
    async with running(app) as client:
        edited = csv.read_text() + "g, bob, developer\n"

        async def edit_seen() -> bool:
            if await allowed(client):
                return True
            # the watcher may still be arming: the same edit is saved again until one is seen
            csv.write_text(edited)
            return False

        await wait_for(
            edit_seen, timeout=20, interval=0.5, message="the watcher never saw the edit"
        )
        # the audit row is written right after the swap: wait for it too
        items: list[dict[str, Any]] = []

        async def reload_audited() -> bool:
            nonlocal items
            items = (await client.get("/api/v1/audit?source=file", headers=ADMIN)).json()["items"]
            return bool(items)

        await wait_for(
            reload_audited, timeout=20, interval=0.05, message="no audit row for the file reload"
        )
        event = items[0]
        assert event["action"] == "policy.reloaded" and event["details"]["files"] == ["policy.csv"]
        assert event["actor"] == "file-watcher"
        revision = app.state.services.engine.revision

        csv.write_text(csv.read_text() + "g, bob, bob\n")  # a self-cycle: refused
        url = "/api/v1/audit?source=file&action=policy.reload.rejected"
        rejected: list[dict[str, Any]] = []

        async def rejection_audited() -> bool:
            nonlocal rejected
            rejected = (await client.get(url, headers=ADMIN)).json()["items"]
            return bool(rejected)

        await wait_for(
            rejection_audited, timeout=20, interval=0.05, message="no audit row for the rejection"
        )
        finding = rejected[0]["details"]["findings"][0]
        assert (finding["file"], finding["code"]) == ("policy.csv", "PL006")
        assert finding["line"] == len(csv.read_text().splitlines())
        assert app.state.services.engine.revision == revision and await allowed(client)
    assert all(t.get_name() != "policy-watcher" for t in asyncio.all_tasks())


async def test_a_policy_with_lint_errors_never_starts(
    make_settings: SettingsFactory, policy_dir: Path
) -> None:
    csv = policy_dir / "policy.csv"
    csv.write_text(csv.read_text() + "g, viewer, admin\n")  # viewer -> admin -> ... -> viewer
    app = create_app(make_settings(policy_dir=policy_dir))
    with pytest.raises(InvalidPolicy, match="PL006 error: role cycle"):
        async with running(app) as _:
            pass


async def test_audit_filters_and_pages(app: FastAPI) -> None:
    async with running(app) as client:
        t0 = datetime.now(UTC)
        for i in range(5):
            r = await client.put(f"/api/v1/roles/viewer/members/u{i}", headers=ADMIN)
            assert r.status_code == 201
        first = (await client.get("/api/v1/audit?limit=2", headers=ADMIN)).json()
        assert first["total"] == 5 and [e["target"] for e in first["items"]] == [
            "g, u4, viewer",
            "g, u3, viewer",
        ]
        second = (
            await client.get(f"/api/v1/audit?limit=2&cursor={first['next_cursor']}", headers=ADMIN)
        ).json()
        assert [e["target"] for e in second["items"]] == ["g, u2, viewer", "g, u1, viewer"]
        offset = (await client.get("/api/v1/audit?limit=2&offset=4", headers=ADMIN)).json()
        assert [e["target"] for e in offset["items"]] == ["g, u0, viewer"]
        assert offset["next_cursor"] is None

        def q(**params: str) -> dict[str, str]:
            return params

        for params, total in (
            (q(actor="api-key:admin"), 5),
            (q(actor="someone"), 0),
            (q(action="role.member.added"), 5),
            (q(action="role.*"), 5),
            (q(action="policy.*"), 0),
            (q(source="api"), 5),
            (q(target="g, u3, viewer"), 1),
            (q(since=(t0 - timedelta(minutes=1)).isoformat()), 5),
            (q(since=(t0 + timedelta(minutes=1)).isoformat()), 0),
            (q(until=t0.isoformat()), 0),
        ):
            r = await client.get("/api/v1/audit", params=params, headers=ADMIN)
            assert r.status_code == 200 and r.json()["total"] == total, (params, r.text)
