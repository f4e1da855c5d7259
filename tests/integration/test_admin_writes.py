"""Admin writes: a committed write is never reported as failed, and a retry carrying the same
`Idempotency-Key` gets the first answer (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.main import create_app
from app.services import Services
from app.store.models import IdempotencyKey
from tests.conftest import SettingsFactory
from tests.integration.test_policy_admin import ADMIN, KEY, counts
from tests.support.apps import running
from tests.support.waiting import wait_for

RULE = {"ptype": "p", "rule": ["auditor", "api:reports", "read", "allow"]}


@pytest.fixture
def admin_app(database_url: str, make_settings: SettingsFactory, policy_dir: Path) -> FastAPI:
    return create_app(
        make_settings(database_url=database_url, policy_dir=policy_dir, admin_api_key=KEY)
    )


@pytest.fixture
async def client(admin_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(admin_app) as c:
        yield c


def _services(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


async def test_a_retry_with_the_same_key_gets_the_first_answer(
    client: httpx.AsyncClient, admin_app: FastAPI
) -> None:
    rules, audit, revision = await counts(admin_app)
    headers = {**ADMIN, "Idempotency-Key": "add-auditor-1"}
    first = await client.post("/api/v1/policies", json=RULE, headers=headers)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = await client.post("/api/v1/policies", json=RULE, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    # applied and audited once
    assert await counts(admin_app) == (rules + 1, audit + 1, revision + 1)
    # without the key the same request is a conflict, as before
    plain = await client.post("/api/v1/policies", json=RULE, headers=ADMIN)
    assert plain.status_code == 409 and plain.json()["error"]["code"] == "REQ_006"


async def test_the_same_key_with_another_request_is_refused(
    client: httpx.AsyncClient, admin_app: FastAPI
) -> None:
    headers = {**ADMIN, "Idempotency-Key": "k-1"}
    assert (await client.post("/api/v1/policies", json=RULE, headers=headers)).status_code == 201
    other = {"ptype": "p", "rule": ["auditor", "api:reports", "write", "allow"]}
    before = await counts(admin_app)
    refused = await client.post("/api/v1/policies", json=other, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "REQ_007"
    # another path with the same key, too
    member = await client.put("/api/v1/roles/viewer/members/zed", headers=headers)
    assert member.status_code == 422 and member.json()["error"]["code"] == "REQ_007"
    assert await counts(admin_app) == before
    bad = await client.post(
        "/api/v1/policies", json=RULE, headers={**ADMIN, "Idempotency-Key": "x" * 300}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "REQ_001"


async def test_a_client_error_is_replayed_too(client: httpx.AsyncClient) -> None:
    headers = {**ADMIN, "Idempotency-Key": "remove-missing"}
    missing = {"ptype": "p", "rule": ["nobody", "api:x", "read", "allow"]}
    first = await client.request("DELETE", "/api/v1/policies", json=missing, headers=headers)
    assert first.status_code == 404
    again = await client.request("DELETE", "/api/v1/policies", json=missing, headers=headers)
    assert again.status_code == 404 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_concurrent_retries_apply_once_and_never_fail(
    client: httpx.AsyncClient, admin_app: FastAPI
) -> None:
    rules, audit, revision = await counts(admin_app)
    headers = {**ADMIN, "Idempotency-Key": "storm"}
    answers = await asyncio.gather(
        *(client.put("/api/v1/roles/viewer/members/zed", headers=headers) for _ in range(12))
    )
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {201, 409}, statuses
    assert statuses.count(201) >= 1
    for r in answers:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "REQ_006" and r.headers["Retry-After"] == "1"
    assert await counts(admin_app) == (rules + 1, audit + 1, revision + 1)
    replay = await client.put("/api/v1/roles/viewer/members/zed", headers=headers)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"


async def test_a_cancelled_request_still_completes_its_write(
    client: httpx.AsyncClient, admin_app: FastAPI
) -> None:
    services = _services(admin_app)
    rules, audit, revision = await counts(admin_app)
    headers = {**ADMIN, "Idempotency-Key": "cancelled-1"}
    lock = services.policy_admin._lock  # the write queues behind it, after its reservation
    await lock.acquire()
    request = asyncio.create_task(client.post("/api/v1/policies", json=RULE, headers=headers))
    try:

        async def reserved() -> bool:
            async with services.db.sessions() as s:
                found = await s.scalar(
                    select(IdempotencyKey.scope).where(IdempotencyKey.key == "cancelled-1")
                )
            return found is not None

        await wait_for(reserved, timeout=20)
        request.cancel()  # the server cancels the request (e.g. its shutdown timeout ran out)
        await asyncio.sleep(0)
    finally:
        lock.release()
    # the write went on, and its real answer was still sent: never reported as failed
    answered = await request
    assert answered.status_code == 201, answered.text

    async def applied() -> bool:
        return await counts(admin_app) == (rules + 1, audit + 1, revision + 1)

    await wait_for(applied, timeout=20)
    retry = await client.post("/api/v1/policies", json=RULE, headers=headers)

    async def completed() -> bool:
        r = await client.post("/api/v1/policies", json=RULE, headers=headers)
        return r.status_code == 201

    if retry.status_code != 201:  # the record may still be being written
        await wait_for(completed, timeout=20)
        retry = await client.post("/api/v1/policies", json=RULE, headers=headers)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert await counts(admin_app) == (rules + 1, audit + 1, revision + 1)


async def test_a_key_whose_release_failed_is_released_once_the_database_answers(
    client: httpx.AsyncClient, admin_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write failed and its key could not be released (database down at that moment):
    it is released in the background, so a retry is not told "in progress" for minutes."""
    writes = _services(admin_app).writes
    store = writes.store
    reservation = await store.reserve(scope="ops", key="k-outage", request_hash="h")
    assert reservation.new
    real_release = store.release
    failures = 0

    async def release_after_an_outage(*, scope: str, key: str) -> None:
        nonlocal failures
        if failures < 2:  # the database is still down for the first two attempts
            failures += 1
            raise ConnectionError("database unavailable")
        await real_release(scope=scope, key=key)

    monkeypatch.setattr(store, "release", release_after_an_outage)
    await writes._forget("ops", "k-outage", ConnectionError("database unavailable"))
    assert failures == 1  # the immediate release failed

    async def released() -> bool:
        async with _services(admin_app).db.transaction() as s:
            rows = await s.execute(select(IdempotencyKey).where(IdempotencyKey.key == "k-outage"))
            return rows.first() is None

    await wait_for(released, timeout=20)
    assert failures == 2
    assert (await store.reserve(scope="ops", key="k-outage", request_hash="h")).new
