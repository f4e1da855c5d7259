"""Search on every kind of model: the v1 reverse queries (typed, paged, any model) and the
AuthZEN search endpoints on the shipped RBAC policy and on a domain model (per tenant)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import SettingsFactory
from tests.support.apps import serve
from tests.support.policies import EXAMPLES

pytestmark = pytest.mark.integration
KEY = "search-admin-key-0123456789"


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_v1_queries_typed_and_paged_on_rbac(client: httpx.AsyncClient) -> None:
    who = await _get(client, "/api/v1/authz/subjects", resource="api:schemas", action="write")
    assert {"type": "user", "id": "alice"} in who["subjects"]
    assert {"type": "client", "id": "client:ci-pipeline"} in who["subjects"]
    assert "alice" in who["users"] and "developer" in who["roles"]  # unchanged fields
    users = await _get(
        client,
        "/api/v1/authz/subjects",
        resource="api:schemas",
        action="write",
        subject_type="user",
        limit=1,
    )
    assert len(users["subjects"]) == 1 and users["total"] >= 2 and users["next_page_token"]
    following = await _get(
        client,
        "/api/v1/authz/subjects",
        resource="api:schemas",
        action="write",
        subject_type="user",
        limit=1,
        page_token=users["next_page_token"],
    )
    assert following["subjects"] != users["subjects"]
    assert all(s["type"] == "user" for s in users["subjects"] + following["subjects"])
    what = await _get(
        client, "/api/v1/authz/objects", subject="alice", action="write", resource_type="api"
    )
    ids = [r["id"] for r in what["resources"]]
    assert "api:schemas" in ids and all("*" not in i for i in ids)
    assert "api:branches:*" in what["allowed"]  # patterns stay in the rule view
    group = await _get(
        client, "/api/v1/authz/objects", subject="alice", subject_type="group", action="write"
    )
    assert group["resources"] == [] and group["allowed"] == []


async def test_v1_queries_answer_on_abac_instead_of_400(make_settings: SettingsFactory) -> None:
    policy = EXAMPLES / "authzen-search"
    settings = make_settings(policy_dir=policy, policy_source="files", admin_api_key=KEY)
    async with serve(settings) as (_, client):
        document = yaml.safe_load((policy / "entities.yaml").read_text())
        headers = {"X-API-Key": KEY}
        assert (
            await client.post("/api/v1/entities/import", json=document, headers=headers)
        ).status_code == 200
        who = await _get(
            client,
            "/api/v1/authz/subjects",
            resource="101",
            resource_type="record",
            action="edit",
        )
        assert who["subjects"] == [{"type": "user", "id": "alice"}]
        assert who["users"] == [] and who["roles"] == []
        what = await _get(
            client,
            "/api/v1/authz/objects",
            subject="erin",
            subject_type="user",
            action="view",
            resource_type="record",
        )
        assert [r["id"] for r in what["resources"]] == ["105", "111", "115", "117"]


async def test_authzen_search_on_the_shipped_rbac_policy(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/access/v1/search/subject",
        json={
            "subject": {"type": "user"},
            "action": {"name": "delete"},
            "resource": {"type": "api", "id": "api:branches:feature"},
        },
    )
    assert r.status_code == 200
    results = r.json()["results"]
    assert {"type": "user", "id": "alice"} in results  # developer
    assert {"type": "user", "id": "carol"} in results  # admin
    assert {"type": "user", "id": "bob"} not in results  # viewer
    denied = await client.post(
        "/access/v1/search/subject",
        json={
            "subject": {"type": "user"},
            "action": {"name": "write"},
            "resource": {"type": "api", "id": "api:branches:main"},
        },
    )
    assert {"type": "user", "id": "bob"} not in denied.json()["results"]
    actions = await client.post(
        "/access/v1/search/action",
        json={
            "subject": {"type": "user", "id": "bob"},
            "resource": {"type": "api", "id": "api:schemas"},
        },
    )
    names = [a["name"] for a in actions.json()["results"]]
    assert "read" in names and "delete" not in names


DOMAINS = EXAMPLES / "rbac_with_domains"


async def test_per_tenant_metadata_and_search_on_domains(make_settings: SettingsFactory) -> None:
    settings = make_settings(policy_dir=DOMAINS, policy_source="files")
    async with serve(settings) as (_, client):
        meta = (await client.get("/.well-known/authzen-configuration/tenants/tenant-a")).json()
        base = settings.issuer + "/tenants/tenant-a"
        assert meta["policy_decision_point"] == base
        assert meta["access_evaluation_endpoint"] == base + "/access/v1/evaluation"
        assert meta["search_subject_endpoint"] == base + "/access/v1/search/subject"
        unknown = await client.get("/.well-known/authzen-configuration/tenants/nowhere")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "REQ_004"

        async def writes(tenant: str) -> bool:
            r = await client.post(
                f"/tenants/{tenant}/access/v1/evaluation",
                json={
                    "subject": {"type": "user", "id": "alice"},
                    "action": {"name": "write"},
                    "resource": {"type": "api", "id": "api:ontologies:geo"},
                    # a context domain cannot leave the tenant of the path
                    "context": {"domain": "tenant-a"},
                },
            )
            assert r.status_code == 200, r.text
            return bool(r.json()["decision"])

        assert await writes("tenant-a") is True
        assert await writes("tenant-b") is False
        found = await client.post(
            "/tenants/tenant-a/access/v1/search/subject",
            json={
                "subject": {"type": "user"},
                "action": {"name": "write"},
                "resource": {"type": "api", "id": "api:ontologies:geo"},
            },
        )
        assert {"type": "user", "id": "alice"} in found.json()["results"]
        batch = await client.post(
            "/tenants/tenant-b/access/v1/evaluations",
            json={
                "subject": {"type": "user", "id": "alice"},
                "evaluations": [
                    {
                        "action": {"name": "read"},
                        "resource": {"type": "api", "id": "api:ontologies:geo"},
                    },
                    {
                        "action": {"name": "write"},
                        "resource": {"type": "api", "id": "api:ontologies:geo"},
                        "context": {"domain": "tenant-a"},
                    },
                ],
            },
        )
        assert [e["decision"] for e in batch.json()["evaluations"]] == [True, False]
