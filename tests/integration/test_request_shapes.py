"""Request shapes over HTTP: positional `values`, context tokens, r2/p2/m2 selection, in the
decision API and in AuthZEN, each answer equal to `casbin.Enforcer` on the same files."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import SettingsFactory
from tests.support.apps import serve
from tests.support.fidelity import FIDELITY, Ask, casbin_answer, casbin_enforcer

pytestmark = pytest.mark.integration


async def test_values_context_and_definition_in_the_decision_api(
    make_settings: SettingsFactory,
) -> None:
    folder = FIDELITY / "enforce_context"
    oracle = casbin_enforcer(folder)
    async with serve(make_settings(policy_dir=folder)) as (_app, client):
        cases: list[tuple[dict[str, object], Ask]] = [
            (
                {"values": ["ben", "restart"], "definition": "r2"},
                Ask(True, "2", ("ben", "restart")),
            ),
            (
                {"values": ["ann", "restart"], "definition": "2"},
                Ask(False, "2", ("ann", "restart")),
            ),
            (
                {"subject": "ann", "resource": "report", "action": "read"},
                Ask(True, "", ("ann", "report", "read")),
            ),
            ({"values": ["ann", "report", "read"]}, Ask(True, "", ("ann", "report", "read"))),
        ]
        for body, ask in cases:
            response = await client.post("/api/v1/authz/check", json={**body, "explain": True})
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["allowed"] is casbin_answer(oracle, ask)[0] is ask.allowed
            assert answer["explain"]["definition"]["matcher"] == f"m{ask.suffix}"
        bad: list[dict[str, object]] = [
            {"values": ["ben", "restart", "x"], "definition": "r2"},  # r2 takes 2 values
            {"values": ["ben", "restart"], "definition": "r7"},  # no such definition
            {"values": ["ben"], "subject": "ben"},  # both shapes at once
            {"subject": "ben", "action": "restart"},  # neither shape complete
            {"values": ["ben", "restart"], "definition": "p2; drop"},
        ]
        for body in bad:
            response = await client.post("/api/v1/authz/check", json=body)
            assert response.status_code in (400, 422), (body, response.text)
            assert "error" in response.json()


async def test_authzen_context_selects_definitions_and_fills_tokens(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    # AuthZEN ids are scoped by type: resource {"type": "room", "id": "vault"} is the policy
    # key `room:vault`, so this copy of the fidelity policy names the room by that key.
    policy = tmp_path / "abac_context"
    shutil.copytree(FIDELITY / "abac_context", policy)
    rules = (policy / "policy.csv").read_text(encoding="utf-8")
    (policy / "policy.csv").write_text(rules.replace(", vault,", ", room:vault,"), "utf-8")
    async with serve(make_settings(policy_dir=policy)) as (_app, client):

        async def decide(env: str | None) -> dict[str, object]:
            body: dict[str, object] = {
                "subject": {"type": "user", "id": "ann"},
                "resource": {"type": "room", "id": "vault"},
                "action": {"name": "open"},
            }
            if env is not None:
                body["context"] = {"env": env}
            response = await client.post("/access/v1/evaluation", json=body)
            assert response.status_code in (200, 400), response.text
            return dict(response.json())

        assert (await decide("office"))["decision"] is True
        assert (await decide("home"))["decision"] is False
        missing = await decide(None)
        assert missing.get("decision") is not True
    async with serve(make_settings(policy_dir=FIDELITY / "enforce_context")) as (_app, client):
        body = {
            "subject": {"type": "user", "id": "ben"},
            "resource": {"type": "service", "id": "-"},
            "action": {"name": "restart"},
            "context": {"definition": "r2"},
        }
        # r2 = sub, act: the subject and the action fill it, the resource is not read.
        response = await client.post("/access/v1/evaluation", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["decision"] is True
        body["subject"] = {"type": "user", "id": "ann"}
        response = await client.post("/access/v1/evaluation", json=body)
        assert response.json()["decision"] is False
        body["context"] = {"definition": "r9"}
        response = await client.post("/access/v1/evaluation", json=body)
        assert response.status_code == 400


async def test_sdk_checks_values_context_and_definitions(make_settings: SettingsFactory) -> None:
    from oms_auth import AuthClient, RequestInvalid

    async with serve(make_settings(policy_dir=FIDELITY / "enforce_context")) as (app, _client):
        transport = httpx.ASGITransport(app=app)
        async with AuthClient(base_url="http://testserver", transport=transport) as sdk:
            assert await sdk.check_values(["ben", "restart"], definition="r2")
            assert not await sdk.check_values(["ann", "restart"], definition="r2")
            assert await sdk.check("ben", "-", "restart", definition="2")
            explained = await sdk.check_values(["ann", "report", "read"], explain=True)
            assert explained and explained.explain is not None
            assert explained.explain["definition"]["policy"] == "p"
            with pytest.raises(RequestInvalid):
                await sdk.check_values(["ben"], definition="r2")
