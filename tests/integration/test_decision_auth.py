"""`OMS_AUTH_DECISION_AUTH=token`: decisions need a caller; checks are rate limited per caller."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from app.config import Settings
from tests.support.tokens import AppFactory, add_client, bearer

CHECK = {"subject": "alice", "resource": "api:schemas", "action": "write"}
STRONG = "3q2+7wAAAAAnEjRWeJq83vDhV1Yzq2Hk0T3x9Zp7LmQ="  # 256+ bits by estimate
BOB_CHECK = {**CHECK, "subject": "bob"}  # an end user may ask about itself
EVALUATION = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "write"},
    "resource": {"type": "api", "id": "api:schemas"},
}
GUARDED = [
    ("POST", "/api/v1/authz/check", CHECK),
    ("POST", "/api/v1/authz/check/batch", {"checks": [CHECK]}),
    ("POST", "/access/v1/evaluation", EVALUATION),
    ("POST", "/access/v1/evaluations", {**EVALUATION, "evaluations": [{}]}),
    ("GET", "/api/v1/users/alice/permissions", None),
    ("POST", "/api/v1/users/permissions/batch", {"user_ids": ["alice"]}),
    ("GET", "/api/v1/authz/subjects?resource=api:schemas&action=write", None),
    ("GET", "/api/v1/authz/objects?subject=alice&action=write", None),
]


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
async def test_every_decision_route_needs_a_caller(
    token_app_factory: AppFactory, method: str, path: str, body: object, policy_dir: Path
) -> None:
    with (policy_dir / "policy.csv").open("a") as f:
        f.write("\np, client:web, authz, query, allow\n")  # may ask anything about anyone
    async with token_app_factory(
        decision_auth="token", admin_api_key="k" * 32, policy_dir=policy_dir
    ) as env:
        anonymous = await env.http.request(method, path, json=body)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "AUTH_001"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        forged = await env.http.request(
            method, path, json=body, headers={"Authorization": "Bearer eyJ.not.valid"}
        )
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "AUTH_004"
        service = await env.oauth("token", "web", {"grant_type": "client_credentials"})
        with_token = await env.http.request(
            method, path, json=body, headers=bearer(service.json()["access_token"])
        )
        assert with_token.status_code == 200, with_token.text
        with_key = await env.http.request(method, path, json=body, headers={"X-API-Key": "k" * 32})
        assert with_key.status_code == 200


async def test_metadata_stays_public(token_app_factory: AppFactory) -> None:
    async with token_app_factory(decision_auth="token") as env:
        assert (await env.http.get("/.well-known/authzen-configuration")).status_code == 200
        assert (await env.http.get("/healthz")).status_code == 200


async def test_checks_are_rate_limited_per_caller(token_app_factory: AppFactory) -> None:
    async with token_app_factory(decision_auth="token", rate_limit_check="3/minute") as env:
        alice = bearer((await env.login("alice"))["access_token"])
        bob = bearer((await env.login("bob"))["access_token"])
        for _ in range(3):
            ok = await env.http.post("/api/v1/authz/check", json=CHECK, headers=alice)
            assert ok.status_code == 200
        limited = await env.http.post("/api/v1/authz/check", json=CHECK, headers=alice)
        assert limited.status_code == 429
        error = limited.json()["error"]
        assert error["code"] == "RATE_001" and error["details"]["limit"] == "3/minute"
        assert int(limited.headers["retry-after"]) >= 1
        # every check of a batch counts; another caller has its own window
        batch = await env.http.post(
            "/api/v1/authz/check/batch", json={"checks": [BOB_CHECK] * 4}, headers=bob
        )
        assert batch.status_code == 429
        assert (
            await env.http.post("/api/v1/authz/check", json=BOB_CHECK, headers=bob)
        ).status_code == 200


async def test_open_mode_needs_nothing(token_app_factory: AppFactory) -> None:
    async with token_app_factory(decision_auth="open", rate_limit_check="1/minute") as env:
        for _ in range(3):
            assert (await env.http.post("/api/v1/authz/check", json=CHECK)).status_code == 200


def test_production_defaults_to_token_mode() -> None:
    production = Settings(
        environment="production",
        issuer="https://auth.example.com",
        encryption_key=SecretStr(STRONG),
    )
    assert production.decision_auth_mode == "token"
    assert Settings(environment="development").decision_auth_mode == "open"
    assert (
        Settings(
            environment="production",
            issuer="https://a.example",
            encryption_key=SecretStr(STRONG),
            decision_auth="open",
        ).decision_auth_mode
        == "open"
    )


async def test_v2_check_is_rate_limited_per_user(token_app_factory: AppFactory) -> None:
    async with token_app_factory(rate_limit_check="2/minute") as env:
        alice = bearer((await env.login("alice"))["access_token"])
        body = {"resource": "api:schemas", "action": "write"}
        for _ in range(2):
            assert (
                await env.http.post("/api/v2/authz/check", json=body, headers=alice)
            ).status_code == 200
        limited = await env.http.post("/api/v2/authz/check", json=body, headers=alice)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "RATE_001"


@pytest.mark.parametrize("storage", ["memory", "redis"])
async def test_services_get_the_service_sized_check_limit(
    token_app_factory: AppFactory, redis_url: str, storage: str, policy_dir: Path
) -> None:
    """API keys and client-credentials tokens count against `rate_limit_check_service`; a
    person's token against `rate_limit_check`. Each caller has its own window."""
    redis = {"redis_url": redis_url} if storage == "redis" else {}
    with (policy_dir / "policy.csv").open("a") as f:
        f.write("\ng, client:m2m, decision-client\n")  # may ask about others
    async with token_app_factory(
        policy_dir=policy_dir,
        decision_auth="token",
        rate_limit_check="3/minute",
        rate_limit_check_service="2500/hour",
        admin_api_key="k" * 32,
        **redis,
    ) as env:
        env.secrets["m2m"] = await add_client(
            env.settings, "m2m", grants=["client_credentials"], scopes=["api:*:read"]
        )
        token = await env.oauth("token", "m2m", {"grant_type": "client_credentials"})
        assert token.status_code == 200, token.text
        callers = {
            "api key": {"X-API-Key": "k" * 32},
            "client credentials": bearer(token.json()["access_token"]),
        }
        batch = {"checks": [CHECK] * 1000}
        for name, headers in callers.items():
            for _ in range(2):  # 2000 checks: far over the end-user limit, under the service one
                r = await env.http.post("/api/v1/authz/check/batch", json=batch, headers=headers)
                assert r.status_code == 200, (name, r.text)
            over = await env.http.post("/api/v1/authz/check/batch", json=batch, headers=headers)
            assert over.status_code == 429, name
            details = over.json()["error"]["details"]
            assert details == {"limit": "2500/hour", "window": 3600, "name": "check_service"}
        alice = bearer((await env.login("alice"))["access_token"])
        r = await env.http.post(
            "/api/v1/authz/check/batch", json={"checks": [CHECK] * 4}, headers=alice
        )
        assert r.status_code == 429 and r.json()["error"]["details"]["name"] == "check_caller"


def test_default_service_limit_fits_a_service_sending_batches() -> None:
    """The default lets one service send 1000-check batches at 150,000 decisions a second
    (about twice what one worker serves in the benchmarks) for a whole minute."""
    from limits import parse

    settings = Settings()
    service = parse(settings.rate_limit_check_service)
    assert service.amount / service.get_expiry() >= 150_000
    user = parse(settings.rate_limit_check)
    assert user.amount / user.get_expiry() < service.amount / service.get_expiry()
