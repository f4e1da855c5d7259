"""Token-mode decision callers on the lean path: one Redis round trip at most, none in-window.

Against the machine's Redis: a bearer-token or API-key check costs exactly one pipelined round
trip (revocation lookup + check charge together) when nothing is known in process, and none
while `OMS_AUTH_CALLER_CACHE_SECONDS` covers both; revocations made here apply at once, those
made by another instance within the window; the check limit holds across instances; and no
route depends on a sync function (each would hop through the thread pool).
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.adapters.redis.batch import RedisBatcher
from app.adapters.redis.revocation_cache import RedisRevocationCache
from app.api.v1 import tokens as tokens_api
from app.main import create_app
from app.tokens import jose
from tests.support.apps import serve
from tests.support.tokens import AppFactory, TokenApp, bearer, claims_of
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

CHECK = {"subject": "alice", "resource": "api:schemas", "action": "write"}
KEY = "k" * 32


@pytest.fixture
def asking_policy(policy_dir: Path) -> Path:
    """The shipped policy, with client `web` a decision client: in token mode a caller asking
    about someone else needs `authz:check`, which the policy grants to `decision-client`."""
    with (policy_dir / "policy.csv").open("a") as f:
        f.write("\ng, client:web, decision-client\n")
    return policy_dir


def batcher_of(env: TokenApp) -> RedisBatcher:
    cache = env.tokens.service.revocations.cache
    assert isinstance(cache, RedisRevocationCache)
    return cache.batcher


async def service_token(env: TokenApp) -> dict[str, str]:
    r = await env.oauth("token", "web", {"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text
    return bearer(r.json()["access_token"])


async def check(http: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await http.post("/api/v1/authz/check", json={**CHECK, **body}, headers=headers)


async def test_one_round_trip_for_revocation_and_charge(
    token_app_factory: AppFactory, redis_url: str, asking_policy: Path
) -> None:
    async with token_app_factory(
        policy_dir=asking_policy, decision_auth="token", redis_url=redis_url, caller_cache_seconds=0
    ) as env:
        headers = await service_token(env)
        batcher = batcher_of(env)
        for _ in range(3):
            before = batcher.round_trips
            r = await check(env.http, headers)
            assert r.status_code == 200, r.text
            assert batcher.round_trips - before == 1
        before = batcher.round_trips
        r = await env.http.post(
            "/api/v1/authz/check/batch", json={"checks": [CHECK] * 50}, headers=headers
        )
        assert r.status_code == 200 and len(r.json()["results"]) == 50
        assert batcher.round_trips - before == 1


async def test_no_round_trip_within_the_window(
    token_app_factory: AppFactory, redis_url: str, asking_policy: Path
) -> None:
    async with token_app_factory(
        policy_dir=asking_policy,
        decision_auth="token",
        redis_url=redis_url,
        caller_cache_seconds=10,
        admin_api_key=KEY,
    ) as env:
        headers = await service_token(env)
        batcher = batcher_of(env)
        assert (await check(env.http, headers)).status_code == 200
        assert (await check(env.http, {"X-API-Key": KEY})).status_code == 200
        before = batcher.round_trips
        for _ in range(5):
            assert (await check(env.http, headers)).status_code == 200
            assert (await check(env.http, {"X-API-Key": KEY})).status_code == 200
        assert batcher.round_trips == before


async def test_revocation_here_applies_at_once_despite_the_window(
    token_app_factory: AppFactory, redis_url: str
) -> None:
    async with token_app_factory(
        decision_auth="token", redis_url=redis_url, caller_cache_seconds=10
    ) as env:
        tokens = await env.login("alice")
        headers = bearer(tokens["access_token"])
        assert (await check(env.http, headers)).status_code == 200
        out = await env.http.post("/api/v1/auth/logout", headers=headers)
        assert out.status_code == 204
        r = await check(env.http, headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "AUTH_005"


async def test_revocation_elsewhere_applies_within_the_window(
    token_app_factory: AppFactory, redis_url: str
) -> None:
    async with token_app_factory(
        decision_auth="token", redis_url=redis_url, caller_cache_seconds=0.5
    ) as first:
        tokens = await first.login("alice")
        headers = bearer(tokens["access_token"])
        async with serve(first.settings) as (_, second):
            assert (await check(second, headers)).status_code == 200  # now known in-window
            out = await first.http.post("/api/v1/auth/logout", headers=headers)
            assert out.status_code == 204

            async def refused() -> bool:
                return (await check(second, headers)).status_code == 401

            await wait_for(refused, timeout=20)


async def test_revocation_elsewhere_is_announced_to_other_instances(
    token_app_factory: AppFactory, redis_url: str
) -> None:
    async with token_app_factory(
        decision_auth="token", redis_url=redis_url, caller_cache_seconds=10
    ) as first:
        tokens = await first.login("alice")
        headers = bearer(tokens["access_token"])
        async with serve(first.settings) as (second_app, second):
            assert (await check(second, headers)).status_code == 200  # kept for 10 s
            second_services = second_app.state.services
            revocations = second_services.tokens.service.revocations
            channel = revocations.cache.channel
            redis = second_services.redis

            async def both_listen() -> bool:
                counts = await redis.pubsub_numsub(channel)
                return bool(counts and counts[0][1] >= 2)

            await wait_for(both_listen, timeout=20)
            heard = revocations._generation  # bumped only when told to forget

            out = await first.http.post("/api/v1/auth/logout", headers=headers)
            assert out.status_code == 204

            async def announced() -> bool:
                return bool(revocations._generation > heard)

            await wait_for(announced, timeout=20)  # the window never bumps it
            r = await check(second, headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "AUTH_005"


async def test_check_limit_holds_across_instances(
    token_app_factory: AppFactory, redis_url: str, asking_policy: Path
) -> None:
    async with token_app_factory(
        policy_dir=asking_policy,
        decision_auth="token",
        redis_url=redis_url,
        rate_limit_check_service="6/minute",
        caller_cache_seconds=0,
    ) as first:
        headers = await service_token(first)
        async with serve(first.settings) as (_, second):
            statuses = [
                (await check(http, headers)).status_code for http in (first.http, second) * 4
            ]
            assert statuses == [200] * 6 + [429] * 2
            limited = await check(second, headers)
            assert limited.json()["error"]["code"] == "RATE_001"
            assert int(limited.headers["retry-after"]) >= 1


async def test_in_window_admission_still_stops_at_the_limit(
    token_app_factory: AppFactory, redis_url: str, asking_policy: Path
) -> None:
    async with token_app_factory(
        policy_dir=asking_policy,
        decision_auth="token",
        redis_url=redis_url,
        rate_limit_check_service="5/minute",
        caller_cache_seconds=10,
    ) as env:
        headers = await service_token(env)
        statuses = [(await check(env.http, headers)).status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        batch = await env.http.post(
            "/api/v1/authz/check/batch", json={"checks": [CHECK] * 2}, headers=headers
        )
        assert batch.status_code == 429


async def test_a_request_the_lane_admitted_is_not_charged_twice(
    token_app_factory: AppFactory, redis_url: str, asking_policy: Path
) -> None:
    """An explained check goes to the documented route; one with a domain the model lacks is
    admitted by the lane, then answered (with its error) by the documented route."""
    async with token_app_factory(
        policy_dir=asking_policy,
        decision_auth="token",
        redis_url=redis_url,
        rate_limit_check_service="3/minute",
    ) as env:
        headers = await service_token(env)
        odd = await check(env.http, headers, domain="nowhere")
        explained = await check(env.http, headers, explain=True)
        assert explained.status_code == 200 and "explain" in explained.json()
        assert (await check(env.http, headers)).status_code == 200
        r = await check(env.http, headers)
        assert r.status_code == 429, (odd.status_code, odd.text)


VALIDATE = "/api/v1/tokens/validate"


async def test_token_mode_validation_takes_the_lane_and_refuses_within_the_window(
    token_app_factory: AppFactory,
    redis_url: str,
    asking_policy: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Token-mode validation is answered by the lane once its caller is admitted (a client or
    an administrator, as on the documented route); a caller whose token was revoked on another
    instance is refused within `OMS_AUTH_CALLER_CACHE_SECONDS`, one whose token expired at
    once, and a revoked validated token is reported at once."""
    answered: list[bool] = []
    lane = tokens_api._validate_fast

    async def watched(*args: Any) -> bytes | None:
        out = None
        try:
            out = await lane(*args)
        finally:
            answered.append(out is not None)  # an error raised hands over to the route
        return out

    monkeypatch.setattr(tokens_api, "_validate_fast", watched)  # read by create_app
    async with token_app_factory(
        policy_dir=asking_policy,
        decision_auth="token",
        redis_url=redis_url,
        caller_cache_seconds=0.5,
        admin_api_key=KEY,
    ) as first:
        user = (await first.login("bob"))["access_token"]
        body = {"token": user}
        assert (await first.http.post(VALIDATE, json=body)).status_code == 401
        own = await first.http.post(VALIDATE, json=body, headers=bearer(user))
        assert own.status_code == 403 and own.json()["error"]["code"] == "RBAC_002"
        wrong = await first.http.post(VALIDATE, json=body, headers={"X-API-Key": "x" * 32})
        assert wrong.status_code == 401
        assert answered == [False, False, False]  # refused: the documented route answered
        web = await service_token(first)
        for headers in (web, {"X-API-Key": KEY}):
            ok = await first.http.post(VALIDATE, json=body, headers=headers)
            assert ok.status_code == 200 and ok.json() == {"valid": True, "claims": claims_of(user)}
        assert answered[-2:] == [True, True]

        # An administrator's token revoked on another instance: refused here within the window.
        admin = bearer((await first.login("carol"))["access_token"])
        second_app = create_app(first.settings)
        async with second_app.router.lifespan_context(second_app):
            transport = httpx.ASGITransport(app=second_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as second:
                assert (await second.post(VALIDATE, json=body, headers=admin)).status_code == 200
                out = await first.http.post("/api/v1/auth/logout", headers=admin)
                assert out.status_code == 204

                async def refused() -> bool:
                    r = await second.post(VALIDATE, json=body, headers=admin)
                    return r.status_code == 401 and r.json()["error"]["code"] == "AUTH_005"

                await wait_for(refused, timeout=20)

        # A caller's token that expires: accepted until its `exp`, never after.
        claims = claims_of((await first.login("carol"))["access_token"])
        claims["exp"] = int(time.time()) + 2
        signer = await first.tokens.keys.signer()
        short = bearer(jose.sign(claims, key=signer.key, kid=signer.kid, alg=signer.alg))
        assert (await first.http.post(VALIDATE, json=body, headers=short)).status_code == 200

        async def expired() -> bool:
            r = await first.http.post(VALIDATE, json=body, headers=short)
            return r.status_code == 401 and r.json()["error"]["code"] == "AUTH_002"

        await wait_for(expired, timeout=20)

        # The validated token revoked: reported at once, through the lane.
        assert (
            await first.http.post("/api/v1/auth/logout", headers=bearer(user))
        ).status_code == 204
        gone = await first.http.post(VALIDATE, json=body, headers=web)
        assert gone.status_code == 200 and gone.json()["error"]["code"] == "AUTH_005"
        assert answered[-1] is True


def _sync_calls(dependant: Dependant) -> list[str]:
    found = []
    for sub in dependant.dependencies:
        if sub.call is not None and not (
            inspect.iscoroutinefunction(sub.call)
            or inspect.iscoroutinefunction(type(sub.call).__call__)
        ):
            found.append(getattr(sub.call, "__qualname__", repr(sub.call)))
        found += _sync_calls(sub)
    return found


async def test_no_route_depends_on_a_sync_function(token_app: TokenApp) -> None:
    sync = {
        route.path: calls
        for route in token_app.app.routes
        if isinstance(route, APIRoute) and (calls := _sync_calls(route.dependant))
    }
    assert sync == {}
    handlers = [
        route.path
        for route in token_app.app.routes
        if isinstance(route, APIRoute) and not inspect.iscoroutinefunction(route.endpoint)
    ]
    assert handlers == []
