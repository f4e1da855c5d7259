"""AuthZEN 1.0 Authorization API: evaluation, evaluations, metadata."""

from __future__ import annotations

from typing import Any

import httpx

ALICE = {"type": "user", "id": "alice"}
SCHEMAS = {"type": "api", "id": "api:schemas"}
MAIN = {"type": "api", "id": "api:branches:main"}


async def test_evaluation_permit_and_deny_are_200(client: httpx.AsyncClient) -> None:
    permit = await client.post(
        "/access/v1/evaluation",
        json={"subject": ALICE, "action": {"name": "write"}, "resource": SCHEMAS},
    )
    deny = await client.post(
        "/access/v1/evaluation",
        json={"subject": ALICE, "action": {"name": "delete"}, "resource": MAIN},
    )
    assert permit.status_code == deny.status_code == 200
    assert permit.json()["decision"] is True
    assert deny.json()["decision"] is False


async def test_unknown_fields_ignored_missing_fields_400(client: httpx.AsyncClient) -> None:
    ok = await client.post(
        "/access/v1/evaluation",
        json={
            "subject": {**ALICE, "extra": 1},
            "action": {"name": "read"},
            "resource": SCHEMAS,
            "whatever": True,
            "context": {"time": "now"},
        },
        headers={"X-Request-ID": "authzen-1"},
    )
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "authzen-1"
    missing = await client.post(
        "/access/v1/evaluation", json={"subject": ALICE, "resource": SCHEMAS}
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "REQ_001"
    no_type = await client.post(
        "/access/v1/evaluation",
        json={"subject": {"id": "alice"}, "action": {"name": "read"}, "resource": SCHEMAS},
    )
    assert no_type.status_code == 400


def _evals(**extra: Any) -> dict[str, Any]:
    return {
        "subject": ALICE,
        "action": {"name": "read"},
        "evaluations": [
            {"resource": SCHEMAS},  # permit (read)
            {"resource": MAIN, "action": {"name": "delete"}},  # deny
            {"resource": SCHEMAS, "action": {"name": "write"}},  # permit
            {"resource": SCHEMAS, "subject": {"type": "user", "id": "bob"}},  # permit
        ],
        **extra,
    }


async def test_evaluations_defaults_and_overrides(client: httpx.AsyncClient) -> None:
    r = await client.post("/access/v1/evaluations", json=_evals())
    assert [e["decision"] for e in r.json()["evaluations"]] == [True, False, True, True]


async def test_evaluations_short_circuit_semantics(client: httpx.AsyncClient) -> None:
    deny_first = await client.post(
        "/access/v1/evaluations",
        json=_evals(options={"evaluations_semantic": "deny_on_first_deny"}),
    )
    assert [e["decision"] for e in deny_first.json()["evaluations"]] == [True, False]
    permit_first = await client.post(
        "/access/v1/evaluations",
        json=_evals(options={"evaluations_semantic": "permit_on_first_permit"}),
    )
    assert [e["decision"] for e in permit_first.json()["evaluations"]] == [True]
    bad = await client.post(
        "/access/v1/evaluations", json=_evals(options={"evaluations_semantic": "sometimes"})
    )
    assert bad.status_code == 400


async def test_evaluations_item_errors_in_place(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/access/v1/evaluations",
        json={
            "action": {"name": "read"},
            "evaluations": [
                {"subject": ALICE, "resource": SCHEMAS},
                {"resource": SCHEMAS},  # no subject anywhere
            ],
        },
    )
    assert r.status_code == 200
    first, second = r.json()["evaluations"]
    assert first["decision"] is True
    assert second["decision"] is False and second["context"]["error"]["status"] == 400


async def test_evaluations_without_items_is_a_single_evaluation(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/access/v1/evaluations",
        json={"subject": ALICE, "action": {"name": "write"}, "resource": SCHEMAS},
    )
    assert r.json()["decision"] is True


async def test_metadata(client: httpx.AsyncClient) -> None:
    meta = (await client.get("/.well-known/authzen-configuration")).json()
    assert meta["access_evaluation_endpoint"].endswith("/access/v1/evaluation")
    assert meta["access_evaluations_endpoint"].endswith("/access/v1/evaluations")
    assert meta["policy_decision_point"].startswith("http")


async def test_evaluations_item_context_can_be_left_out(
    client: httpx.AsyncClient, make_settings: Any
) -> None:
    with_context = (await client.post("/access/v1/evaluations", json=_evals())).json()
    assert all(set(e) == {"decision", "context"} for e in with_context["evaluations"])
    bare = await client.post(
        "/access/v1/evaluations", json=_evals(options={"include_context": False})
    )
    assert bare.json() == {
        "evaluations": [
            {"decision": True},
            {"decision": False},
            {"decision": True},
            {"decision": True},
        ]
    }
    # An item error keeps its context: it is the only place the reason is given.
    errors = await client.post(
        "/access/v1/evaluations",
        json={
            "action": {"name": "read"},
            "evaluations": [{"subject": ALICE, "resource": SCHEMAS}, {"resource": SCHEMAS}],
            "options": {"include_context": False},
        },
    )
    first, second = errors.json()["evaluations"]
    assert first == {"decision": True} and second["context"]["error"]["status"] == 400


async def test_evaluations_item_context_setting(make_settings: Any) -> None:
    from tests.support.apps import serve

    async with serve(make_settings(authzen_item_context=False)) as (_, c):
        r = await c.post("/access/v1/evaluations", json=_evals())
        assert [set(e) for e in r.json()["evaluations"]] == [{"decision"}] * 4
        kept = await c.post(
            "/access/v1/evaluations", json=_evals(options={"include_context": True})
        )
        assert all("decision_id" in e["context"] for e in kept.json()["evaluations"])


async def test_type_scopes_the_id(client: httpx.AsyncClient) -> None:
    async def decide(subject: dict[str, Any]) -> bool:
        r = await client.post(
            "/access/v1/evaluation",
            json={"subject": subject, "action": {"name": "write"}, "resource": SCHEMAS},
        )
        return bool(r.json()["decision"])

    assert await decide(ALICE) is True
    assert await decide({"type": "group", "id": "alice"}) is False
    assert await decide({"type": "user", "id": "client:ci-pipeline"}) is False
    v1 = await client.post(
        "/api/v1/authz/check",
        json={
            "subject": {"type": "group", "id": "alice"},
            "resource": "api:schemas",
            "action": "write",
        },
    )
    assert v1.json()["allowed"] is False
