"""The SDK against the real app (in-process ASGI transport) and a real server process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from oms_auth import (
    AuthClient,
    BatchTooLarge,
    Entity,
    RequestInvalid,
    SyncAuthClient,
    TransportError,
)
from tests.support.server import free_port, serve


@pytest.fixture
async def sdk(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[AuthClient]:
    # `client` has started the app's lifespan; the SDK shares the same app.
    async with AuthClient(
        base_url="http://testserver", transport=httpx.ASGITransport(app=app)
    ) as c:
        yield c


async def test_check_and_explain(sdk: AuthClient) -> None:
    assert await sdk.check("alice", "api:schemas", "write")
    denied = await sdk.check("bob", "api:schemas", "write", explain=True)
    assert not denied and denied.explain is not None and denied.explain["effect"] == "deny"
    typed = await sdk.check(Entity("alice", "user"), Entity("api:schemas", "api"), "read")
    assert typed.allowed and typed.decision_id and typed.policy_revision


async def test_batch_and_item_errors(sdk: AuthClient) -> None:
    results = await sdk.check_batch(
        [
            {"subject": "alice", "resource": "api:schemas", "action": "write"},
            {"subject": "alice", "resource": "api:schemas", "action": "write", "domain": "x"},
        ]
    )
    assert results[0].allowed and not results[1].allowed
    assert results[1].error is not None and results[1].error["code"] == "REQ_001"
    with pytest.raises(BatchTooLarge) as info:
        await sdk.check_batch([{"subject": "a", "resource": "b", "action": "c"}] * 1001)
    assert info.value.status == 413 and info.value.request_id


async def test_validation_error_is_typed(sdk: AuthClient) -> None:
    with pytest.raises(RequestInvalid) as info:
        await sdk.check("", "api:schemas", "read")
    assert info.value.details["fields"][0]["field"] == "subject"


async def test_authzen_and_permissions(sdk: AuthClient) -> None:
    answer = await sdk.evaluate(
        subject={"type": "user", "id": "alice"},
        action={"name": "write"},
        resource={"type": "api", "id": "api:schemas"},
    )
    assert answer["decision"] is True
    perms = await sdk.user_permissions("alice")
    assert perms["roles"] == ["developer", "viewer"]
    many = await sdk.users_permissions(["alice", "client:ci-pipeline"])
    assert [u["user_id"] for u in many] == ["alice", "client:ci-pipeline"]


def test_sync_client_against_real_server(tmp_path: Path) -> None:
    with (
        serve({"OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/sdk.db"}, log_dir=tmp_path) as srv,
        SyncAuthClient(base_url=srv.url) as client,
    ):
        assert client.check("carol", "api:policies", "write").allowed
        assert not client.check("carol", "api:branches:main", "delete").allowed


def test_unreachable_service_is_transport_error() -> None:
    with (
        SyncAuthClient(base_url=f"http://127.0.0.1:{free_port()}", timeout=1) as client,
        pytest.raises(TransportError),
    ):
        client.check("a", "b", "c")
