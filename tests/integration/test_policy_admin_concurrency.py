"""Concurrent admin writes leave the database, the enforcer and the audit log consistent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.main import create_app
from app.store.models import AuditEvent, CasbinRule, PolicyState
from tests.conftest import SettingsFactory
from tests.support.apps import running

pytestmark = pytest.mark.integration

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
WRITES = 50


def body(i: int) -> dict[str, Any]:
    if i % 2:
        return {"ptype": "g", "rule": [f"user-{i}", "developer"]}
    return {"ptype": "p", "rule": [f"user-{i}", f"api:reports:{i}", "read", "allow"]}


async def write(client: httpx.AsyncClient, i: int) -> httpx.Response:
    return await client.post(
        "/api/v1/policies", json=body(i), headers={**ADMIN, "X-Request-ID": f"req-conc-{i}"}
    )


async def assert_consistent(app: FastAPI, start_revision: int) -> None:
    """Every write stored once, audited once with its request id, and served."""
    async with app.state.services.db.sessions() as s:
        stored = {(r.ptype, tuple(r.values())) for r in await s.scalars(select(CasbinRule))}
        audited = list(await s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        revision = await s.scalar(select(PolicyState.revision))
    # Besides one event per write, a burst of 50 changes also raises the (intended) system
    # alert alert.mass_permission_change, once per instance that noticed it.
    events = [e for e in audited if e.action == "policy.rule.added"]
    others = [e for e in audited if e.action != "policy.rule.added"]
    assert {(e.action, e.source) for e in others} <= {("alert.mass_permission_change", "system")}
    expected = {(b["ptype"], tuple(b["rule"])) for b in map(body, range(WRITES))}
    assert stored == expected
    assert sorted(e.request_id or "" for e in events) == sorted(
        f"req-conc-{i}" for i in range(WRITES)
    )
    assert [e.details["revision"] for e in events] == list(
        range(start_revision + 1, start_revision + WRITES + 1)
    )  # serialised: each write committed its own revision, in commit order
    assert revision == start_revision + WRITES
    live = {r.key for r in app.state.services.engine.snapshot.rules}
    assert expected <= live


async def test_fifty_parallel_writes(
    database_url: str, make_settings: SettingsFactory, policy_dir: Path
) -> None:
    app = create_app(
        make_settings(database_url=database_url, policy_dir=policy_dir, admin_api_key=KEY)
    )
    async with running(app) as client:
        start = app.state.services.engine.revision
        responses = await asyncio.gather(*(write(client, i) for i in range(WRITES)))
        assert [r.status_code for r in responses] == [201] * WRITES, [r.text for r in responses]
        revisions = sorted(r.json()["policy_revision"] for r in responses)
        assert revisions == list(range(start + 1, start + WRITES + 1))
        await assert_consistent(app, start)
        checks = await client.post(
            "/api/v1/authz/check/batch",
            json={
                "checks": [
                    {"subject": "user-1", "resource": "api:schemas", "action": "write"},
                    {"subject": "user-2", "resource": "api:reports:2", "action": "read"},
                    {"subject": "user-2", "resource": "api:reports:4", "action": "read"},
                ]
            },
        )
        assert [x["allowed"] for x in checks.json()["results"]] == [True, True, False]


async def test_two_instances_writing_at_once(
    database_url: str, make_settings: SettingsFactory, policy_dir: Path
) -> None:
    """Two instances on one database: the policy_state row lock serialises their writers."""
    settings = make_settings(database_url=database_url, policy_dir=policy_dir, admin_api_key=KEY)
    first, second = create_app(settings), create_app(settings)
    async with running(first) as a, running(second) as b:
        start = second.state.services.engine.revision  # the database revision after both starts
        responses = await asyncio.gather(*(write(a if i % 2 else b, i) for i in range(WRITES)))
        assert [r.status_code for r in responses] == [201] * WRITES
        for app in (first, second):  # what another instance's change notice would do
            await app.state.services.engine.load(trigger="test", bump=False)
            await assert_consistent(app, start)
