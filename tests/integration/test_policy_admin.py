"""The policy admin API on SQLite and PostgreSQL: auth, writes, conflicts, validation, audit."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from starlette.requests import HTTPConnection

from app.main import create_app
from app.security.principal import Alongside, Principal
from app.store.models import AuditEvent, CasbinRule, PolicyState
from tests.conftest import SettingsFactory
from tests.policy.support import REPO
from tests.support.apps import running

pytestmark = pytest.mark.integration

KEY = "test-admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}


async def counts(app: FastAPI) -> tuple[int, int, int]:
    """(stored rules, audit events, policy revision) straight from the database."""
    async with app.state.services.db.sessions() as s:
        rules = await s.scalar(select(func.count()).select_from(CasbinRule))
        audit = await s.scalar(select(func.count()).select_from(AuditEvent))
        revision = await s.scalar(select(PolicyState.revision))
    return int(rules or 0), int(audit or 0), int(revision or 0)


async def allowed(client: httpx.AsyncClient, subject: str, resource: str, action: str) -> bool:
    r = await client.post(
        "/api/v1/authz/check", json={"subject": subject, "resource": resource, "action": action}
    )
    assert r.status_code == 200, r.text
    return bool(r.json()["allowed"])


@pytest.fixture
def admin_app(database_url: str, make_settings: SettingsFactory, policy_dir: Path) -> FastAPI:
    return create_app(
        make_settings(database_url=database_url, policy_dir=policy_dir, admin_api_key=KEY),
        resolvers=[HeaderUser()],
    )


@pytest.fixture
async def client(admin_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(admin_app) as c:
        yield c


class HeaderUser:
    """A test-only resolver (every app here has it): `X-Test-User: name` is a non-admin
    principal."""

    async def resolve(
        self, connection: HTTPConnection, *, alongside: Alongside | None = None
    ) -> Principal | None:
        name = connection.headers.get("x-test-user")
        principal = Principal(subject=name, method="test") if name else None
        if principal is not None and alongside is not None:
            await alongside(principal)
        return principal


async def test_admin_routes_need_the_key_or_an_admin(
    client: httpx.AsyncClient, admin_app: FastAPI
) -> None:
    routes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/api/v1/policies", None),
        ("POST", "/api/v1/policies", {"ptype": "g", "rule": ["x", "viewer"]}),
        ("DELETE", "/api/v1/policies", {"ptype": "g", "rule": ["x", "viewer"]}),
        ("GET", "/api/v1/roles/viewer/members", None),
        ("PUT", "/api/v1/roles/viewer/members/x", None),
        ("DELETE", "/api/v1/roles/viewer/members/x", None),
        ("POST", "/api/v1/policies/reload", None),
        ("GET", "/api/v1/audit", None),
    ]
    before = await counts(admin_app)
    for method, url, body in routes:
        none = await client.request(method, url, json=body)
        assert none.status_code == 401 and none.json()["error"]["code"] == "AUTH_001", url
        wrong = await client.request(method, url, json=body, headers={"X-API-Key": KEY + "x"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "AUTH_001", url
        user = await client.request(method, url, json=body, headers={"X-Test-User": "bob"})
        assert user.status_code == 403 and user.json()["error"]["code"] == "RBAC_002", url
    assert await counts(admin_app) == before
    assert (await client.get("/api/v1/policies", headers=ADMIN)).status_code == 200


async def test_no_configured_key_means_closed(
    make_settings: SettingsFactory, policy_dir: Path
) -> None:
    app = create_app(make_settings(policy_dir=policy_dir))
    async with running(app) as c:
        for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": "anything"}):
            r = await c.get("/api/v1/policies", headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "AUTH_001"


async def test_add_list_and_remove_a_rule(client: httpx.AsyncClient, admin_app: FastAPI) -> None:
    rules, audit, revision = await counts(admin_app)
    assert not await allowed(client, "bob", "api:reports", "read")
    body = {"ptype": "p", "rule": ["bob", "api:reports", "read", "allow"]}
    r = await client.post(
        "/api/v1/policies", json=body, headers={**ADMIN, "X-Request-ID": "req-add-1"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["live"] is True and r.json()["policy_revision"] == revision + 1
    assert await allowed(client, "bob", "api:reports", "read")
    assert await counts(admin_app) == (rules + 1, audit + 1, revision + 1)

    listed = (await client.get("/api/v1/policies?source=db", headers=ADMIN)).json()
    assert listed["total"] == 1 and listed["items"][0]["rule"] == body["rule"]
    files = (await client.get("/api/v1/policies?ptype=g&subject=alice", headers=ADMIN)).json()
    assert files["items"] == [
        {"ptype": "g", "rule": ["alice", "developer"], "source": "policy.csv:39"}
    ]
    page = (await client.get("/api/v1/policies?limit=5&offset=5", headers=ADMIN)).json()
    assert len(page["items"]) == 5 and page["next_offset"] == 10 and page["total"] > 10

    r = await client.request(
        "DELETE", "/api/v1/policies", json=body, headers={**ADMIN, "X-Request-ID": "req-del-1"}
    )
    assert r.status_code == 200, r.text
    assert not await allowed(client, "bob", "api:reports", "read")
    assert await counts(admin_app) == (rules, audit + 2, revision + 2)

    events = (await client.get("/api/v1/audit?action=policy.rule.*", headers=ADMIN)).json()
    removed, added = events["items"]
    assert (added["action"], added["request_id"], added["source"]) == (
        "policy.rule.added",
        "req-add-1",
        "api",
    )
    assert added["actor"] == "api-key:admin" and added["before"] is None
    assert added["after"] == {"ptype": "p", "rule": body["rule"]}
    assert removed["before"] == added["after"] and removed["after"] is None
    assert removed["target"] == "p, bob, api:reports, read, allow"


async def test_conflicts_and_missing_rules(client: httpx.AsyncClient, admin_app: FastAPI) -> None:
    before = await counts(admin_app)
    file_rule = {"ptype": "p", "rule": ["developer", "api:schemas", "write", "allow"]}
    dup = await client.post("/api/v1/policies", json=file_rule, headers=ADMIN)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "REQ_006"
    assert "policy.csv:17" in dup.json()["error"]["message"]
    delete = await client.request("DELETE", "/api/v1/policies", json=file_rule, headers=ADMIN)
    assert delete.status_code == 409 and delete.json()["error"]["code"] == "REQ_006"
    assert "editing that file" in delete.json()["error"]["message"]
    assert delete.json()["error"]["details"]["source"] == "policy.csv:17"
    missing = {"ptype": "p", "rule": ["nobody", "api:x", "read", "allow"]}
    gone = await client.request("DELETE", "/api/v1/policies", json=missing, headers=ADMIN)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "REQ_004"
    assert await counts(admin_app) == before
    new = {"ptype": "p", "rule": ["erin", "api:x", "read", "allow"]}
    assert (await client.post("/api/v1/policies", json=new, headers=ADMIN)).status_code == 201
    again = await client.post("/api/v1/policies", json=new, headers=ADMIN)
    assert again.status_code == 409 and "the database" in again.json()["error"]["message"]


async def test_role_members(client: httpx.AsyncClient, admin_app: FastAPI) -> None:
    r = await client.get("/api/v1/roles/developer/members", headers=ADMIN)
    assert r.status_code == 200
    assert [m["subject"] for m in r.json()["members"]] == ["admin", "alice", "client:ci-pipeline"]
    assert r.json()["effective_members"] == ["admin", "alice", "carol", "client:ci-pipeline"]
    unknown = await client.get("/api/v1/roles/develper/members", headers=ADMIN)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "RBAC_001"

    put = await client.put("/api/v1/roles/developer/members/bob", headers=ADMIN)
    assert put.status_code == 201 and put.json()["created"] is True
    assert await allowed(client, "bob", "api:schemas", "write")
    before = await counts(admin_app)
    again = await client.put("/api/v1/roles/developer/members/bob", headers=ADMIN)
    assert again.status_code == 200 and again.json()["created"] is False
    assert await counts(admin_app) == before  # an idempotent PUT writes nothing

    to_unknown = await client.put("/api/v1/roles/develper/members/bob", headers=ADMIN)
    assert to_unknown.status_code == 404 and to_unknown.json()["error"]["code"] == "RBAC_001"
    from_file = await client.delete("/api/v1/roles/developer/members/alice", headers=ADMIN)
    assert from_file.status_code == 409 and "policy.csv:39" in from_file.json()["error"]["message"]
    assert (await client.delete("/api/v1/roles/developer/members/bob", headers=ADMIN)).is_success
    assert not await allowed(client, "bob", "api:schemas", "write")
    missing = await client.delete("/api/v1/roles/developer/members/bob", headers=ADMIN)
    assert missing.status_code == 404


async def test_a_change_that_adds_a_cycle_is_refused(
    client: httpx.AsyncClient, admin_app: FastAPI
) -> None:
    before = await counts(admin_app)
    revision = admin_app.state.services.engine.revision
    r = await client.put("/api/v1/roles/admin/members/viewer", headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["code"] == "RBAC_003"
    finding = r.json()["error"]["details"]["findings"][0]
    assert finding["code"] == "PL006"
    assert finding["message"] == "role cycle: viewer -> admin -> developer -> viewer"
    assert await counts(admin_app) == before
    assert admin_app.state.services.engine.revision == revision


async def test_new_warnings_are_returned(client: httpx.AsyncClient) -> None:
    # the developer deny on api:branches:main write covers this allow for developers
    body = {"ptype": "p", "rule": ["developer", "api:branches:main", "write", "allow"]}
    r = await client.post("/api/v1/policies", json=body, headers=ADMIN)
    assert r.status_code == 201
    assert [w["code"] for w in r.json()["warnings"]] == ["PL103"]


BAD_BODIES: list[Any] = [
    {"ptype": "p", "rule": ["bob", "api:x", "read"]},  # arity
    {"ptype": "p", "rule": ["bob", "api:x", "read", "allow", "extra"]},
    {"ptype": "p", "rule": ["bob,eve", "api:x", "read", "allow"]},  # comma
    {"ptype": "p", "rule": ["bob", "api:x\n", "read", "allow"]},  # control characters
    {"ptype": "p", "rule": ["bob", "api:\x00x", "read", "allow"]},
    {"ptype": "p", "rule": ["bob", "api:\u202ex", "read", "allow"]},
    {"ptype": "p", "rule": [" bob", "api:x", "read", "allow"]},
    {"ptype": "p", "rule": ["#bob", "api:x", "read", "allow"]},
    {"ptype": "p", "rule": ["", "api:x", "read", "allow"]},
    {"ptype": "p", "rule": ["bob", "x" * 256, "read", "allow"]},
    {"ptype": "p", "rule": ["bob", "api:(x", "read", "allow"]},
    {"ptype": "p", "rule": ["bob", "api:x", "read", "maybe"]},  # effect
    {"ptype": "p", "rule": ["bob", "api:*:x", "read", "allow"]},  # PL008
    {"ptype": "q", "rule": ["bob", "api:x", "read", "allow"]},  # unknown ptype
    {"ptype": "g", "rule": ["bob"]},
    {"ptype": "p", "rule": "bob, api:x, read, allow"},
    {"ptype": "p", "rule": [1, 2, 3, 4]},
    {"ptype": "p", "rule": []},
    {"ptype": "", "rule": ["a", "b"]},
    {"ptype": None},
    {"rule": ["a", "b", "c", "allow"]},
    ["p", "a", "b", "c"],
    "p, a, b, c, allow",
    None,
]


async def test_bad_input_never_breaks_or_changes_anything(
    client: httpx.AsyncClient, admin_app: FastAPI
) -> None:
    before = await counts(admin_app)
    for body in BAD_BODIES:
        for method in ("POST", "DELETE"):
            r = await client.request(method, "/api/v1/policies", json=body, headers=ADMIN)
            assert r.status_code in (404, 409, 422), (method, body, r.text)
            assert r.json()["error"]["code"] in ("RBAC_003", "REQ_001", "REQ_004", "REQ_006")
    for raw in (b"{", b"\xff\xfe", b'{"ptype": "p", "rule": ["a"' + b"]" * 10):
        r = await client.post(
            "/api/v1/policies", content=raw, headers={**ADMIN, "content-type": "application/json"}
        )
        assert r.status_code == 422, raw
    huge = b'{"ptype": "p", "rule": ["' + b"a" * (10 * 1024 * 1024) + b'"]}'
    r = await client.post(
        "/api/v1/policies", content=huge, headers={**ADMIN, "content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "REQ_003"
    for url in (
        "/api/v1/roles/dev%00eloper/members/bob",
        "/api/v1/roles/developer/members/bo%0Ab",
        "/api/v1/roles/developer/members/a,b",
    ):
        r = await client.put(url, headers=ADMIN)
        assert r.status_code in (404, 422), (url, r.text)
    for query in ("limit=0", "limit=abc", "offset=-1", "since=yesterday", "since=2026-01-01T00:00"):
        r = await client.get(f"/api/v1/audit?{query}", headers=ADMIN)
        assert r.status_code == 422, query
    assert await counts(admin_app) == before

    odd = {"ptype": "p", "rule": ['zoë "the" o\'neil', "api:ünïcødé:'q'", "read", "allow"]}
    assert (await client.post("/api/v1/policies", json=odd, headers=ADMIN)).status_code == 201
    assert await allowed(client, 'zoë "the" o\'neil', "api:ünïcødé:'q'", "read")
    await admin_app.state.services.engine.load(trigger="test", bump=False)  # read back from DB
    assert await allowed(client, 'zoë "the" o\'neil', "api:ünïcødé:'q'", "read")


async def test_domain_models_assign_roles_per_domain(
    make_settings: SettingsFactory, tmp_path: Path, sqlite_url: str
) -> None:
    policy = tmp_path / "domains"
    shutil.copytree(REPO / "policies/examples/rbac_with_domains", policy)
    settings = make_settings(policy_dir=policy, admin_api_key=KEY, database_url=sqlite_url)
    async with running(create_app(settings)) as c:
        no_domain = await c.put("/api/v1/roles/editor/members/zed", headers=ADMIN)
        assert no_domain.status_code == 422 and "domain" in no_domain.json()["error"]["message"]
        put = await c.put("/api/v1/roles/editor/members/zed?domain=tenant-a", headers=ADMIN)
        assert put.status_code == 201 and put.json()["rule"] == ["zed", "editor", "tenant-a"]
        members = await c.get("/api/v1/roles/editor/members?domain=tenant-a", headers=ADMIN)
        assert [m["subject"] for m in members.json()["members"]] == ["alice", "zed"]
        check = {"subject": "zed", "resource": "api:ontologies:x", "action": "write"}
        assert (await c.post("/api/v1/authz/check", json={**check, "domain": "tenant-a"})).json()[
            "allowed"
        ]
        assert not (
            await c.post("/api/v1/authz/check", json={**check, "domain": "tenant-b"})
        ).json()["allowed"]


async def test_files_only_service_refuses_writes(
    make_settings: SettingsFactory, policy_dir: Path
) -> None:
    settings = make_settings(policy_dir=policy_dir, admin_api_key=KEY, policy_source="files")
    async with running(create_app(settings)) as c:
        body = {"ptype": "g", "rule": ["bob", "developer"]}
        r = await c.post("/api/v1/policies", json=body, headers=ADMIN)
        assert r.status_code == 409 and "files only" in r.json()["error"]["message"]
