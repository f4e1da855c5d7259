"""The AuthZEN interop scenarios against a running app loaded with policies/examples/.

Each example's entities go into the entity store through the admin API, as an operator
would load them; then the working group's request/response pairs are sent as the official
harnesses send them (tests/support/authzen_interop.py): Todo 1.0 (40), API gateway (25),
search: subject (60), resource (18), action (120).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import SettingsFactory
from tests.support.apps import serve
from tests.support.authzen_interop import (
    action_search_cases,
    gateway_cases,
    resource_search_cases,
    subject_search_cases,
    todo_cases,
)
from tests.support.policies import EXAMPLES

KEY = "interop-admin-key-0123456789"


def _sorted(results: list[dict[str, str]]) -> list[dict[str, str]]:
    """The harness's comparison: results in (type, id) or name order, nulls dropped."""
    clean = [{k: v for k, v in r.items() if v is not None} for r in results]
    return sorted(clean, key=lambda r: (r.get("type", ""), r.get("id", ""), r.get("name", "")))


async def _loaded(make_settings: SettingsFactory, example: str) -> AsyncIterator[httpx.AsyncClient]:
    policy = EXAMPLES / example
    settings = make_settings(policy_dir=policy, policy_source="files", admin_api_key=KEY)
    async with serve(settings) as (_, client):
        document = yaml.safe_load((policy / "entities.yaml").read_text())
        r = await client.post("/api/v1/entities/import", json=document, headers={"X-API-Key": KEY})
        assert r.status_code == 200, r.text
        assert r.json()["served_entity_revision"] == r.json()["entity_revision"]
        yield client


@pytest.fixture
async def todo(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _loaded(make_settings, "authzen-todo"):
        yield c


@pytest.fixture
async def gateway(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _loaded(make_settings, "authzen-gateway"):
        yield c


@pytest.fixture
async def search(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _loaded(make_settings, "authzen-search"):
        yield c


async def _evaluate_all(
    client: httpx.AsyncClient, cases: list[tuple[dict[str, Any], bool]]
) -> None:
    failures = []
    for request, expected in cases:
        r = await client.post("/access/v1/evaluation", json=request)
        assert r.status_code == 200, r.text
        if r.json()["decision"] is not expected:
            failures.append((request, expected))
    assert failures == [], f"{len(failures)} of {len(cases)} cases fail: {failures[:3]}"
    # The same pairs as one boxcarred request, items compared whole (no item context).
    r = await client.post(
        "/access/v1/evaluations",
        json={"evaluations": [c for c, _ in cases], "options": {"include_context": False}},
    )
    assert r.json()["evaluations"] == [{"decision": want} for _, want in cases]


async def test_todo_1_0_scenario_passes_all_40(todo: httpx.AsyncClient) -> None:
    cases = todo_cases()
    assert len(cases) == 40
    await _evaluate_all(todo, cases)


async def test_api_gateway_scenario_passes_all_25(gateway: httpx.AsyncClient) -> None:
    cases = gateway_cases()
    assert len(cases) == 25
    await _evaluate_all(gateway, cases)


async def _search_all(
    client: httpx.AsyncClient, kind: str, cases: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    failures = []
    for request, expected in cases:
        r = await client.post(f"/access/v1/search/{kind}", json=request)
        assert r.status_code == 200, r.text
        if _sorted(r.json()["results"]) != _sorted(expected["results"]):
            failures.append((request, r.json()["results"]))
    assert failures == [], f"{len(failures)} of {len(cases)} {kind} searches fail: {failures[:2]}"


async def test_search_scenario_passes_all_198(search: httpx.AsyncClient) -> None:
    subjects, resources, actions = (
        subject_search_cases(),
        resource_search_cases(),
        action_search_cases(),
    )
    assert (len(subjects), len(resources), len(actions)) == (60, 18, 120)
    await _search_all(search, "subject", subjects)
    await _search_all(search, "resource", resources)
    await _search_all(search, "action", actions)


async def test_search_pages_with_an_opaque_token(search: httpx.AsyncClient) -> None:
    request = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "view"}}
    seen: list[str] = []
    token = None
    for _ in range(10):
        page = {"limit": 6, **({"token": token} if token else {})}
        body = {**request, "resource": {"type": "record"}, "page": page}
        r = (await search.post("/access/v1/search/resource", json=body)).json()
        seen += [x["id"] for x in r["results"]]
        assert r["page"]["total"] == 20 and r["page"]["count"] == len(r["results"])
        token = r["page"]["next_token"]
        if not token:
            break
    assert seen == [str(n) for n in range(101, 121)]
    bad = await search.post(
        "/access/v1/search/resource",
        json={**request, "resource": {"type": "record"}, "page": {"token": "not-ours"}},
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "REQ_001"


async def test_search_needs_the_ids_it_does_not_search_for(search: httpx.AsyncClient) -> None:
    r = await search.post(
        "/access/v1/search/subject",
        json={
            "subject": {"type": "user"},
            "action": {"name": "view"},
            "resource": {"type": "record"},
        },
    )
    assert r.status_code == 400 and "resource.id" in r.json()["error"]["message"]
    r = await search.post(
        "/access/v1/search/resource",
        json={"subject": {"type": "user", "id": "bob"}, "resource": {"type": "record"}},
    )
    assert r.status_code == 400 and "action" in r.json()["error"]["message"]


async def test_metadata_advertises_search(search: httpx.AsyncClient) -> None:
    meta = (await search.get("/.well-known/authzen-configuration")).json()
    for kind in ("subject", "resource", "action"):
        assert meta[f"search_{kind}_endpoint"].endswith(f"/access/v1/search/{kind}")


def test_examples_ship_their_entities() -> None:
    for example in ("authzen-todo", "authzen-gateway", "authzen-search"):
        assert (Path(EXAMPLES) / example / "entities.yaml").is_file()
