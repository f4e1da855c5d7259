"""The entity store: admin API, what the engine reads from it, sync, CLI import/export."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import SettingsFactory
from tests.support.apps import serve, services_of
from tests.support.policies import EXAMPLES, SHIPPED
from tests.support.server import run_cli
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

KEY = "entity-admin-key-0123456789"
ADMIN = {"X-API-Key": KEY}


def _policy_with_group(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns("examples", "tests"))
    with (target / "policy.csv").open("a") as f:
        f.write("g, group:eng, developer\n")
    return target


async def _check(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/api/v1/authz/check", json=body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_admin_api_crud_and_parents_as_role_links(
    make_settings: SettingsFactory, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url=database_url, policy_dir=_policy_with_group(tmp_path), admin_api_key=KEY
    )
    zed_writes = {
        "subject": {"type": "user", "id": "zed"},
        "resource": "api:schemas",
        "action": "write",
    }
    async with serve(settings) as (app, client):
        assert (await client.put("/api/v1/entities/user/zed", json={})).status_code == 401
        assert (await _check(client, zed_writes))["allowed"] is False
        policy_revision = services_of(app).engine.revision
        put = await client.put(
            "/api/v1/entities/user/zed",
            json={"properties": {"team": "eng"}, "parents": [{"type": "group", "id": "eng"}]},
            headers=ADMIN,
        )
        assert put.status_code == 200, put.text
        assert put.json()["served_entity_revision"] == put.json()["entity_revision"] >= 1
        # Group membership through the stored parent; the policy was not reloaded.
        explained = await _check(client, {**zed_writes, "explain": True})
        assert explained["allowed"] is True
        assert explained["explain"]["role_path"] == ["zed", "group:eng", "developer"]
        assert services_of(app).engine.revision == policy_revision
        # A group named zed is not user zed.
        group_zed = {**zed_writes, "subject": {"type": "group", "id": "zed"}}
        assert (await _check(client, group_zed))["allowed"] is False

        got = await client.get("/api/v1/entities/user/zed", headers=ADMIN)
        assert got.json() == {
            "type": "user",
            "id": "zed",
            "properties": {"team": "eng"},
            "parents": [{"type": "group", "id": "eng"}],
        }
        for i in range(3):
            await client.put(f"/api/v1/entities/doc/d{i}", json={}, headers=ADMIN)
        first = (await client.get("/api/v1/entities?type=doc&limit=2", headers=ADMIN)).json()
        assert [e["id"] for e in first["entities"]] == ["d0", "d1"] and first["total"] == 3
        token = first["next_page_token"]
        rest = await client.get(
            f"/api/v1/entities?type=doc&limit=2&page_token={token}", headers=ADMIN
        )
        assert [e["id"] for e in rest.json()["entities"]] == ["d2"]

        deleted = await client.delete("/api/v1/entities/user/zed", headers=ADMIN)
        assert deleted.status_code == 200
        assert (await _check(client, zed_writes))["allowed"] is False
        missing = await client.delete("/api/v1/entities/user/zed", headers=ADMIN)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "REQ_004"
        audit = await client.get("/api/v1/audit?limit=100", headers=ADMIN)
        assert audit.status_code == 200, audit.text
        actions = [e["action"] for e in audit.json()["items"]]
        assert "entities.put" in actions and "entities.delete" in actions


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"properties": []}, "properties"),
        ({"parents": [{"type": "group"}]}, "parents.0.id"),
        ({"parents": "group:eng"}, "parents"),
        ({"colour": "red"}, "colour"),
        ({"properties": {"blob": "x" * 70_000}}, "properties"),
    ],
)
async def test_bad_entities_are_refused_and_nothing_is_stored(
    make_settings: SettingsFactory, body: dict[str, Any], field: str
) -> None:
    async with serve(make_settings(admin_api_key=KEY)) as (app, client):
        r = await client.put("/api/v1/entities/user/zed", json=body, headers=ADMIN)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "REQ_001"
        assert r.json()["error"]["details"]["fields"][0]["field"] == field
        bad_import = await client.post(
            "/api/v1/entities/import",
            json={"entities": [{"type": "user", "id": "ok"}, {"type": "user", "id": "x", **body}]},
            headers=ADMIN,
        )
        assert (
            bad_import.status_code == 422 and "entities.1" in bad_import.json()["error"]["message"]
        )
        assert (await client.get("/api/v1/entities", headers=ADMIN)).json()["total"] == 0
        assert services_of(app).engine.entity_revision == 0


async def test_engine_reads_stored_properties_and_request_properties_win(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(policy_dir=EXAMPLES / "abac", policy_source="files", admin_api_key=KEY)
    async with serve(settings) as (_, client):
        document = {
            "entities": [
                {"type": "user", "id": "bob", "properties": {"department": "eng"}},
                {
                    "type": "doc",
                    "id": "doc:plan",
                    "properties": {"owner": "alice", "department": "eng"},
                },
            ]
        }
        assert (
            await client.post("/api/v1/entities/import", json=document, headers=ADMIN)
        ).status_code == 200
        bob_reads = {
            "subject": {"type": "user", "id": "bob"},
            "resource": {"type": "doc", "id": "doc:plan"},
            "action": "read",
        }
        assert (await _check(client, bob_reads))["allowed"] is True  # all from the store
        moved = {
            **bob_reads,
            "subject": {"type": "user", "id": "bob", "properties": {"department": "ops"}},
        }
        assert (await _check(client, moved))["allowed"] is False  # the request's value wins
        # Nobody stored, nothing sent: the rules that read properties do not match.
        stranger = {**bob_reads, "subject": {"type": "user", "id": "sam"}, "explain": True}
        answer = await _check(client, stranger)
        assert answer["allowed"] is False
        assert answer["explain"]["missing_properties"] == ["subject.department"]
        zen = await client.post(
            "/access/v1/evaluation",
            json={
                "subject": {"type": "user", "id": "alice"},
                "action": {"name": "delete"},
                "resource": {"type": "doc", "id": "doc:plan"},
            },
        )
        assert zen.json()["decision"] is True  # alice owns it, as stored


async def test_entity_changes_reach_another_instance_without_a_policy_reload(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(
        policy_dir=_policy_with_group(tmp_path), admin_api_key=KEY, policy_poll_interval=0.2
    )
    body = {"subject": "zed", "resource": "api:schemas", "action": "write"}
    async with serve(settings) as (app_a, a), serve(settings) as (app_b, b):
        engine_b = services_of(app_b).engine
        await wait_for(
            lambda: _revisions_match(app_a, app_b), timeout=settings.policy_poll_interval + 5
        )
        loads_before = engine_b.revision
        r = await a.put(
            "/api/v1/entities/user/zed",
            json={"parents": [{"type": "group", "id": "eng"}]},
            headers=ADMIN,
        )
        assert r.status_code == 200

        async def b_allows() -> bool:
            return bool((await _check(b, body))["allowed"])

        await wait_for(b_allows, timeout=settings.policy_poll_interval + 10)
        assert engine_b.revision == loads_before  # same policy revision: entities only
        assert engine_b.entity_revision == r.json()["entity_revision"]


async def _revisions_match(a: Any, b: Any) -> bool:
    return bool(services_of(a).engine.revision == services_of(b).engine.revision)


def test_cli_import_then_export_round_trips(tmp_path: Path) -> None:
    env = {"OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    assert run_cli("migrate", env=env).returncode == 0
    source = EXAMPLES / "authzen-todo" / "entities.yaml"
    imported = run_cli("entities", "import", str(source), env=env)
    assert imported.returncode == 0, imported.stderr
    assert "imported 9 entities" in imported.stdout
    exported = run_cli("entities", "export", env=env)
    assert exported.returncode == 0, exported.stderr
    document = orjson.loads(exported.stdout)
    assert len(document["entities"]) == 9
    rick = next(e for e in document["entities"] if e["properties"].get("name") == "Rick Sanchez")
    assert rick["parents"] == [
        {"type": "role", "id": "admin"},
        {"type": "role", "id": "evil_genius"},
    ]
    # The export is an import file: --replace with a subset leaves exactly that subset.
    subset = tmp_path / "subset.json"
    subset.write_bytes(orjson.dumps({"entities": document["entities"][:2]}))
    assert run_cli("entities", "import", "--replace", str(subset), env=env).returncode == 0
    again = orjson.loads(run_cli("entities", "export", env=env).stdout)
    assert again["entities"] == document["entities"][:2]
    bad = tmp_path / "bad.yaml"
    bad.write_text("entities:\n  - {type: user}\n")
    refused = run_cli("entities", "import", str(bad), env=env)
    assert (
        refused.returncode == 2
        and "entity 1" in refused.stderr
        and "Traceback" not in refused.stderr
    )


async def test_token_service_users_are_entities(
    make_settings: SettingsFactory, database_url: str, tmp_path: Path
) -> None:
    from tests.support.tokens import add_user

    settings = make_settings(
        database_url=database_url,
        policy_dir=_policy_with_group(tmp_path),
        admin_api_key=KEY,
        policy_poll_interval=0.2,
    )
    async with serve(settings) as (app, client):
        engine = services_of(app).engine
        await add_user(settings, "uma")  # a new entity revision: instances adopt it

        async def uma_known() -> bool:
            return engine.snapshot.entities.get("user", "uma") is not None

        await wait_for(uma_known, timeout=10)
        uma = engine.snapshot.entities.get("user", "uma")
        assert uma is not None and dict(uma.properties) == {"is_admin": False, "disabled": False}
        r = await client.put(
            "/api/v1/entities/user/uma",
            json={"properties": {"team": "eng"}, "parents": [{"type": "group", "id": "eng"}]},
            headers=ADMIN,
        )
        assert r.status_code == 200
        uma = engine.snapshot.entities.get("user", "uma")
        assert uma is not None
        assert dict(uma.properties) == {"is_admin": False, "disabled": False, "team": "eng"}
        # Parents are roles: in decisions, and in the `roles` claim tokens are issued with.
        assert engine.snapshot.implicit_roles("uma") == ["group:eng", "developer", "viewer"]
        body = {"subject": "uma", "resource": "api:schemas", "action": "write"}
        assert (await _check(client, body))["allowed"] is True
