"""Hostile JSON never reaches the engine or the cache: NaN, lone surrogates, deep nesting and
invalid UTF-8 get 422 REQ_001 (never 500, never a cached answer of another request)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from app.policy.request import DecisionRequest, Entity
from tests.conftest import SettingsFactory
from tests.support.apps import serve

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
JSON = {"content-type": "application/json"}


def _body(department: str) -> bytes:
    subject = '{"type": "user", "id": "alice", "properties": {"department": ' + department + "}}"
    resource = '{"type": "doc", "id": "doc:1", "properties": {"owner": "bob", "department": null}}'
    return ('{"subject": ' + subject + ', "resource": ' + resource + ', "action": "read"}').encode()


@pytest.mark.parametrize("mode", ["open", "token"])
async def test_hostile_json_gets_422(
    make_settings: SettingsFactory, pg_url: str, redis_url: str, mode: str
) -> None:
    settings = make_settings(
        policy_dir=EXAMPLES / "abac",
        database_url=pg_url,
        redis_url=redis_url,
        decision_auth=mode,
        admin_api_key="a" * 40,
    )
    headers = {**JSON, "X-API-Key": "a" * 40}
    async with serve(settings) as (_, http):
        first = await http.post("/api/v1/authz/check", content=_body("null"), headers=headers)
        assert first.status_code == 200 and first.json()["allowed"] is True
        # NaN == NaN is false in the matcher; it must not read the cached answer of `null`
        for bad in ("NaN", "Infinity", '"\\ud800"', '{"\\udc00": 1}', "[" * 40 + "]" * 40):
            r = await http.post("/api/v1/authz/check", content=_body(bad), headers=headers)
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["error"]["code"] == "REQ_001"
        deep = "[" * 300 + "1" + "]" * 300
        r = await http.post("/api/v1/authz/check", content=_body(deep), headers=headers)
        assert r.status_code == 422
        # AuthZEN answers malformed requests with 400 (its spec), the rest with 422
        for path, status in (
            ("/api/v1/authz/check", 422),
            ("/api/v1/auth/login", 422),
            ("/access/v1/evaluation", 400),
        ):
            r = await http.post(path, content=b'{"subject": "\xff\xfe"}', headers=headers)
            assert r.status_code == status, (path, r.text)
            assert r.json()["error"]["code"] == "REQ_001"
        login = await http.post(
            "/api/v1/auth/login",
            content=b'{"username": "\\ud800", "password": "whatever it is"}',
            headers=JSON,
        )
        assert login.status_code == 422
        evaluation = (
            b'{"subject": {"type": "user", "id": "alice", "properties": {"x": NaN}},'
            b' "action": {"name": "read"}, "resource": {"type": "document", "id": "d"}}'
        )
        r = await http.post("/access/v1/evaluation", content=evaluation, headers=headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "REQ_001"


def _req(value: object) -> DecisionRequest:
    return DecisionRequest(
        Entity("alice", None, {"department": value}, kind="subject"),
        Entity("doc", "document", {}, kind="resource"),
        Entity("read", kind="action"),
    )


def test_cache_keys_tell_every_json_value_apart() -> None:
    values: list[object]
    values = [None, True, False, 1, 1.0, 0, 0.0, math.nan, math.inf, "1", "", [], {}, [None]]
    prints = [_req(v).fingerprint() for v in values]
    assert len(set(prints)) == len(values)
    # and never fail on what JSON encoders refuse
    assert _req("\ud800").fingerprint() != _req("\ud801").fingerprint()
    assert _req(2**70).fingerprint() != _req(float(2**70)).fingerprint()
    assert _req({"a": 1, "b": 2}).fingerprint() == _req({"b": 2, "a": 1}).fingerprint()
    assert _req(["ab", "c"]).fingerprint() != _req(["a", "bc"]).fingerprint()
