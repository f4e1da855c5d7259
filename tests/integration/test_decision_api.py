"""The decision API over the app's real lifespan (embedded SQLite defaults)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings


async def test_check_allowed_with_contract_shape(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/authz/check",
        json={"subject": "alice", "resource": "api:schemas", "action": "write"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["allowed"] is True
    assert body["cached"] is False
    assert body["decision_id"].startswith("dec_")
    assert isinstance(body["policy_revision"], int) and body["policy_revision"] >= 1
    assert "explain" not in body
    assert r.headers["x-request-id"].startswith("req_")


async def test_check_explain(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/authz/check",
        json={
            "subject": "alice",
            "resource": "api:branches:main",
            "action": "delete",
            "explain": True,
        },
    )
    explain = r.json()["explain"]
    assert r.json()["allowed"] is False
    assert explain["effect"] == "deny"
    assert explain["matched_rule"]["rule"] == ["developer", "api:branches:main", "delete", "deny"]
    assert explain["matched_rule"]["source"].startswith("policy.csv:")
    assert explain["role_path"] == ["alice", "developer"]


async def test_entities_in_check(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/authz/check",
        json={
            "subject": {"type": "user", "id": "alice", "properties": {"dept": "eng"}},
            "resource": {"type": "api", "id": "api:schemas"},
            "action": {"name": "write"},
        },
    )
    assert r.status_code == 200 and r.json()["allowed"] is True


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    # Any value up to OMS_AUTH_REQUEST_ID_MAX_BYTES comes back verbatim: spaces, commas,
    # tabs, 300 characters; error bodies carry a sanitised copy.
    for sent in ("has space\tand tab", "a, b, c", "x" * 300, 'trace=1; span="2"'):
        r = await client.get("/healthz", headers={"X-Request-ID": sent})
        assert r.headers["x-request-id"] == sent
    odd = "caf\u00e9 id".encode("latin-1")
    r = await client.post("/api/v1/authz/check", content=b"{", headers={b"X-Request-ID": odd})
    assert r.headers.raw and dict(r.headers.raw)[b"x-request-id"] == odd
    assert r.json()["error"]["request_id"] == "caf? id"
    long_id = "y" * 300
    r = await client.post("/api/v1/authz/check", content=b"{", headers={"X-Request-ID": long_id})
    assert r.headers["x-request-id"] == long_id
    assert r.json()["error"]["request_id"] == "y" * 125 + "..."
    too_long = await client.get("/healthz", headers={"X-Request-ID": "z" * 1025})
    assert too_long.headers["x-request-id"].startswith("req_")
    empty = await client.get("/healthz", headers={"X-Request-ID": ""})
    assert empty.headers["x-request-id"].startswith("req_")


async def test_batch_in_order_with_item_errors(client: httpx.AsyncClient) -> None:
    checks = [
        {"subject": "alice", "resource": "api:schemas", "action": "write"},
        {"subject": "bob", "resource": "api:schemas", "action": "write"},
        {"subject": "alice", "resource": "api:schemas", "action": "write", "domain": "x"},
        {"subject": "carol", "resource": "api:policies", "action": "delete", "explain": True},
    ]
    r = await client.post("/api/v1/authz/check/batch", json={"checks": checks})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["allowed"] for x in results] == [True, False, False, True]
    assert results[2]["error"]["code"] == "REQ_001"
    assert "explain" not in results[0] and results[3]["explain"]["effect"] == "allow"
    assert r.json()["policy_revision"] >= 1


async def test_batch_limit(client: httpx.AsyncClient) -> None:
    item = {"subject": "alice", "resource": "api:schemas", "action": "read"}
    ok = await client.post("/api/v1/authz/check/batch", json={"checks": [item] * 1000})
    assert ok.status_code == 200 and len(ok.json()["results"]) == 1000
    too_many = await client.post("/api/v1/authz/check/batch", json={"checks": [item] * 1001})
    assert too_many.status_code == 413
    assert too_many.json()["error"]["code"] == "REQ_002"


async def test_user_permissions(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/users/alice/permissions")
    body = r.json()
    assert body["roles"] == ["developer", "viewer"]
    assert "api:schemas:write" in body["scopes"]
    assert any(p["effect"] == "deny" for p in body["permissions"])
    batch = await client.post(
        "/api/v1/users/permissions/batch", json={"user_ids": ["alice", "bob", "nobody"]}
    )
    users = batch.json()["users"]
    assert [u["user_id"] for u in users] == ["alice", "bob", "nobody"]
    assert users[2]["roles"] == [] and users[2]["scopes"] == []


async def test_reverse_queries(client: httpx.AsyncClient) -> None:
    who = await client.get(
        "/api/v1/authz/subjects", params={"resource": "api:schemas", "action": "write"}
    )
    assert who.status_code == 200
    assert set(who.json()["users"]) == {"alice", "carol", "client:ci-pipeline"}
    assert set(who.json()["roles"]) == {"developer", "admin"}
    what = await client.get(
        "/api/v1/authz/objects", params={"subject": "alice", "action": "delete"}
    )
    assert "api:branches:*" in what.json()["allowed"]
    assert "api:branches:main" in what.json()["denied"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 422, "REQ_001"),
        (b'{"subject": 1, "resource": "x", "action": "read"}', 422, "REQ_001"),
        (b'{"subject": "", "resource": "x", "action": "read"}', 422, "REQ_001"),
        (b'{"subject": "a", "resource": "x"}', 422, "REQ_001"),
        (b'{"subject": "a\\u0000", "resource": "x", "action": "read"}', 422, "REQ_001"),
        (b'{"subject": "a", "resource": "x", "action": "read", "explain": "yes"}', 422, "REQ_001"),
        (b"[]", 422, "REQ_001"),
        (b"null", 422, "REQ_001"),
    ],
)
async def test_bad_input_gets_structured_errors(
    client: httpx.AsyncClient, body: bytes, status: int, code: str
) -> None:
    r = await client.post(
        "/api/v1/authz/check", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == status
    error = r.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == r.headers["x-request-id"]
    assert "Traceback" not in r.text


async def test_validation_details_name_fields(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/authz/check", json={"subject": "", "resource": "x"})
    fields = {f["field"] for f in r.json()["error"]["details"]["fields"]}
    assert fields == {"subject", "action"}


async def test_unicode_and_quotes_in_ids(client: httpx.AsyncClient) -> None:
    for subject in ["ünïcødé", "O'Brien", 'quote"d', "日本語", "a" * 255]:
        r = await client.post(
            "/api/v1/authz/check",
            json={"subject": subject, "resource": "api:schemas", "action": "read"},
        )
        assert r.status_code == 200 and r.json()["allowed"] is False


async def test_body_over_limit_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"subject": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    r = await client.post(
        "/api/v1/authz/check", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "REQ_003"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(11):
            yield b"a" * (1024 * 1024)

    streamed = await client.post(
        "/api/v1/authz/check", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "REQ_003"


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "REQ_004"
    r = await client.get("/api/v1/authz/check")
    assert r.status_code == 405 and r.json()["error"]["code"] == "REQ_005"


async def test_health_ready_metrics_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    await client.post(
        "/api/v1/authz/check", json={"subject": "a", "resource": "b", "action": "read"}
    )
    metrics = (await client.get("/metrics")).text
    assert "oms_auth_decisions_total" in metrics and "oms_auth_policy_revision" in metrics
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/authz/check" in spec["paths"]
    assert "/access/v1/evaluations" in spec["paths"]


async def test_unexpected_failure_is_sys_002_without_internals(settings: Settings) -> None:
    from app.main import create_app
    from tests.support.apps import running

    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    app.add_api_route("/api/v1/boom", boom, methods=["GET"])
    async with running(app) as c:
        r = await c.get("/api/v1/boom", headers={"X-Request-ID": "boom-1"})
        assert r.status_code == 500
        error = r.json()["error"]
        assert error["code"] == "SYS_002" and error["request_id"] == "boom-1"
        assert "secret internal detail" not in r.text and "Traceback" not in r.text


async def test_openapi_documents_every_error_with_the_real_shapes(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in str(spec)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if not code.startswith(("4", "5")):
                    continue
                media = response.get("content", {}).get("application/json", {})
                assert "example" in media or "examples" in media, (method, path, code)
            if path.startswith("/access/"):
                assert "422" not in operation["responses"]
