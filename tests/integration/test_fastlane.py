"""The fast lane answers exactly as the documented FastAPI routes do.

Differential test: the same requests go to an app with the fast routes and to one without
(documented routes only); status, headers that matter and bodies must be equal, apart from
the random decision and request ids.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.api.fastlane import FastLane
from tests.conftest import SettingsFactory
from tests.support import services as svc
from tests.support.apps import serve
from tests.support.tokens import hold_verifications, until_warmed
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

CHECK = "/api/v1/authz/check"
BATCH = "/api/v1/authz/check/batch"
EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"
JSON = {"content-type": "application/json"}
ALICE = {"type": "user", "id": "alice"}


def fast_lane_of(app: FastAPI) -> FastLane | None:
    for middleware in app.user_middleware:
        if "fast_lane" in middleware.kwargs:
            lane = middleware.kwargs["fast_lane"]
            assert lane is None or isinstance(lane, FastLane)
            return lane
    raise AssertionError("no request-context middleware")


def without_fast_lane(app: FastAPI) -> FastAPI:
    """Before the first request builds the middleware stack: documented routes only."""
    for middleware in app.user_middleware:
        if "fast_lane" in middleware.kwargs:
            middleware.kwargs["fast_lane"] = None
    return app


@pytest.fixture
async def pair(
    make_settings: SettingsFactory, sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    second_db = svc.copy_sqlite(sqlite_template, tmp_path / "documented.db")
    async with AsyncExitStack() as stack:
        fast_app, fast = await stack.enter_async_context(serve(make_settings()))
        assert fast_lane_of(fast_app) is not None
        documented_settings = make_settings(database_url=second_db)
        slow_app, slow = await stack.enter_async_context(serve(documented_settings))
        without_fast_lane(slow_app)
        assert fast_lane_of(slow_app) is None
        yield fast, slow


def normalised(response: httpx.Response) -> tuple[int, str | None, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return response.status_code, response.headers.get("content-type"), _scrub(body)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "<id>" if k in ("decision_id", "request_id") else _scrub(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


async def same_answer(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
    path: str,
    content: bytes,
    headers: dict[str, str] | None = None,
) -> Any:
    fast, slow = pair
    h = JSON if headers is None else headers
    a = await fast.post(path, content=content, headers=h)
    b = await slow.post(path, content=content, headers=h)
    assert normalised(a) == normalised(b), (path, content[:200])
    assert a.status_code < 500
    return normalised(a)


def body(value: Any) -> bytes:
    return json.dumps(value).encode()  # stdlib: any int size, Infinity as JavaScript writes it


CASES: list[tuple[str, bytes, dict[str, str] | None]] = [
    (CHECK, body({"subject": "alice", "resource": "api:schemas", "action": "write"}), None),
    (CHECK, body({"subject": "bob", "resource": "api:branches:main", "action": "delete"}), None),
    (CHECK, body({"subject": "alice", "resource": "x", "action": "read", "explain": True}), None),
    (CHECK, body({"subject": "zed", "resource": "x", "action": "read", "explain": True}), None),
    (CHECK, body({"subject": "alice", "resource": "x", "action": "read", "domain": "d"}), None),
    (
        CHECK,
        body({"subject": ALICE, "resource": {"id": "api:schemas"}, "action": {"name": "read"}}),
        None,
    ),
    (CHECK, b'{"subject": "a", "resource": "x", "action": "read", "subject": "alice"}', None),
    (CHECK, b'{"subject": "\\ud800", "resource": "x", "action": "read"}', None),
    (CHECK, b'{"subject": "a", "resource": "x", "action": "read", "extra": NaN}', None),
    (CHECK, b'\xef\xbb\xbf{"subject": "a", "resource": "x", "action": "read"}', None),
    (CHECK, b'{"subject": "a\xff", "resource": "x", "action": "read"}', None),
    (CHECK, b'{"subject": "a", "resource": "x", "action": "read"} trailing', None),
    (CHECK, b'{"subject": "a", "resource": "x", "action": "read", "n": 1e999}', None),
    (CHECK, b"", None),
    (CHECK, b"{not json", None),
    (CHECK, body({"subject": "a", "resource": "x", "action": "read"}), {}),
    (
        CHECK,
        body({"subject": "a", "resource": "x", "action": "read"}),
        {"content-type": "text/plain"},
    ),
    (
        CHECK,
        body({"subject": "alice", "resource": "api:schemas", "action": "write"}),
        {"content-type": "application/json; charset=utf-8"},
    ),
    (
        CHECK,
        body({"subject": "alice", "resource": "api:schemas", "action": "write"}),
        {"content-type": "application/vnd.api+json"},
    ),
    (
        CHECK,
        body({"subject": "alice", "resource": "api:schemas", "action": "write"}),
        {"content-type": "APPLICATION/JSON"},
    ),
    (
        BATCH,
        body(
            {
                "checks": [
                    {"subject": "alice", "resource": "api:schemas", "action": "write"},
                    {"subject": "bob", "resource": "r", "action": "read", "domain": "x"},
                ]
            }
        ),
        None,
    ),
    (
        BATCH,
        body(
            {
                "checks": [{"subject": "alice", "resource": "api:schemas", "action": "write"}],
                "explain": True,
            }
        ),
        None,
    ),
    (BATCH, body({"checks": []}), None),
    (BATCH, body({"checks": [{"subject": "a", "resource": "r", "action": "read"}] * 1001}), None),
    (BATCH, body({"checks": [{"subject": "a"}]}), None),
    (
        EVALUATION,
        body(
            {
                "subject": ALICE,
                "action": {"name": "write"},
                "resource": {"type": "api", "id": "api:schemas"},
            }
        ),
        None,
    ),
    (
        EVALUATION,
        body(
            {
                "subject": ALICE,
                "action": {"name": "write"},
                "resource": {"type": "api", "id": "x"},
                "context": {"domain": "t"},
            }
        ),
        None,
    ),
    (
        EVALUATION,
        body(
            {
                "subject": {"id": "alice"},
                "action": {"name": "read"},
                "resource": {"type": "api", "id": "x"},
            }
        ),
        None,
    ),
    (EVALUATION, b"[]", None),
    (
        EVALUATIONS,
        body(
            {
                "subject": ALICE,
                "action": {"name": "read"},
                "evaluations": [
                    {"resource": {"type": "api", "id": "api:schemas"}},
                    {
                        "resource": {"type": "api", "id": "api:branches:main"},
                        "action": {"name": "delete"},
                    },
                    {"subject": {"id": "x"}},
                ],
            }
        ),
        None,
    ),
    (
        EVALUATIONS,
        body(
            {
                "subject": ALICE,
                "action": {"name": "read"},
                "evaluations": [{"resource": {"type": "api", "id": "api:schemas"}}],
                "options": {"evaluations_semantic": "deny_on_first_deny"},
            }
        ),
        None,
    ),
    (
        EVALUATIONS,
        body(
            {
                "subject": ALICE,
                "action": {"name": "read"},
                "resource": {"type": "api", "id": "api:schemas"},
            }
        ),
        None,
    ),
    (EVALUATIONS, body({"options": {"evaluations_semantic": "sometimes"}}), None),
]


@pytest.mark.parametrize(("path", "content", "headers"), CASES)
async def test_fast_and_documented_routes_agree(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
    path: str,
    content: bytes,
    headers: dict[str, str] | None,
) -> None:
    await same_answer(pair, path, content, headers)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
FIELD = (
    st.sampled_from(["alice", "bob", "", "api:schemas", "read", "write", "x" * 256]) | JSON_VALUES
)
CHECKS = st.fixed_dictionaries(
    {},
    optional={
        "subject": FIELD
        | st.fixed_dictionaries({"id": FIELD}, optional={"type": FIELD, "properties": JSON_VALUES}),
        "resource": FIELD,
        "action": FIELD | st.fixed_dictionaries({"name": FIELD}),
        "domain": FIELD,
        "explain": st.booleans() | JSON_VALUES,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=CHECKS)
async def test_random_bodies_agree(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], data: dict[str, Any]
) -> None:
    await same_answer(pair, CHECK, body(data))
    await same_answer(pair, BATCH, body({"checks": [data, data]}))


async def test_documented_route_serves_what_the_lane_hands_over(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    status, _, answer = await same_answer(pair, CHECK, b"{not json")
    assert status == 422 and answer["error"]["code"] == "REQ_001"
    fast, _ = pair
    metrics = (await fast.get("/metrics")).text
    assert 'route="/api/v1/authz/check"' in metrics
    assert 'route="unmatched"' not in metrics


# -- token mode: the lane admits callers with the same function the documented routes use ----
API_KEY = "k" * 32


@pytest.fixture
async def token_pair(
    make_settings: SettingsFactory, sqlite_template: Path, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    second_db = svc.copy_sqlite(sqlite_template, tmp_path / "documented.db")
    token_mode = {"decision_auth": "token", "admin_api_key": API_KEY, "redis_url": redis_url}
    async with AsyncExitStack() as stack:
        fast_app, fast = await stack.enter_async_context(serve(make_settings(**token_mode)))
        assert fast_lane_of(fast_app) is not None
        documented = make_settings(database_url=second_db, **token_mode)
        slow_app, slow = await stack.enter_async_context(serve(documented))
        without_fast_lane(slow_app)
        yield fast, slow


async def test_token_mode_fast_and_documented_routes_agree(
    token_pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    """Every case without credentials, with the API key and with a wrong one (one app pair)."""
    for path, content, headers in CASES:
        base = JSON if headers is None else headers
        status, _, _ = await same_answer(token_pair, path, content, base)
        assert status != 200, ("answered without credentials", path, content[:100])
        await same_answer(token_pair, path, content, {**base, "X-API-Key": API_KEY})
        wrong = await same_answer(token_pair, path, content, {**base, "X-API-Key": "nope"})
        assert wrong[0] != 200, wrong


# -- logins: the lane refuses a storm the hashing pool cannot serve, as the route would ------
async def test_a_full_hashing_pool_refuses_logins_in_the_lane_as_the_route_would(
    make_settings: SettingsFactory, sqlite_template: Path, tmp_path: Path
) -> None:
    full_pool = {"hash_workers": 1, "hash_queue": 0}
    second_db = svc.copy_sqlite(sqlite_template, tmp_path / "documented.db")
    gate = threading.Event()
    async with AsyncExitStack() as stack:
        stack.callback(gate.set)
        fast_app, fast = await stack.enter_async_context(serve(make_settings(**full_pool)))
        slow_app, slow = await stack.enter_async_context(
            serve(make_settings(database_url=second_db, **full_pool))
        )
        without_fast_lane(slow_app)
        busy = []
        for app in (fast_app, slow_app):
            hasher = app.state.services.tokens.hasher
            await until_warmed(hasher)
            hold_verifications(hasher, gate)
            busy.append(asyncio.create_task(hasher.verify(None, "x")))  # holds the one slot
        for app in (fast_app, slow_app):
            hasher = app.state.services.tokens.hasher

            async def holding(hasher: Any = hasher) -> bool:
                return bool(hasher.busy == 1)

            await wait_for(holding, timeout=10)
        pair = (fast, slow)
        lane = fast_lane_of(fast_app)
        for path in ("/api/v1/auth/login", "/api/v2/auth/login"):
            assert lane is not None and lane.route({"method": "POST", "path": path}) is not None
            login = body({"username": "alice", "password": "a long password"})
            answers = [await client.post(path, content=login, headers=JSON) for client in pair]
            assert normalised(answers[0]) == normalised(answers[1])
            status, _, answer = normalised(answers[0])
            assert status == 503 and answer["error"]["code"] == "SYS_003"
            for r in answers:
                assert 1 <= int(r.headers["retry-after"]) <= 60
                assert r.headers["x-request-id"]
            status, _, _ = await same_answer(pair, path, body({"username": "alice"}))
            assert status == 422  # an invalid body is the route's to answer
        fast_refused = fast_app.state.services.tokens.hasher.refused
        assert fast_refused == slow_app.state.services.tokens.hasher.refused == 2
        gate.set()
        await asyncio.gather(*busy)
