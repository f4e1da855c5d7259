"""Token mode: who may ask the decision service about whom (app.security.asking)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tokens import AppFactory, TokenApp, add_client, bearer

KEY = "k" * 32


def _check(subject: str) -> dict[str, str]:
    return {"subject": subject, "resource": "api:schemas", "action": "read"}


def _evaluation(subject: str) -> dict[str, object]:
    return {
        "subject": {"type": "user", "id": subject},
        "action": {"name": "read"},
        "resource": {"type": "api", "id": "api:schemas"},
    }


@pytest.fixture
def asking_policy(policy_dir: Path) -> Path:
    with (policy_dir / "policy.csv").open("a") as f:
        f.write("\ng, client:web, decision-client\n")
    return policy_dir


async def _client_token(env: TokenApp, client_id: str) -> dict[str, str]:
    r = await env.oauth("token", client_id, {"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text
    return bearer(r.json()["access_token"])


async def test_an_end_user_may_only_ask_about_itself(
    token_app_factory: AppFactory, asking_policy: Path
) -> None:
    async with token_app_factory(
        decision_auth="token", admin_api_key=KEY, policy_dir=asking_policy
    ) as env:
        for version in ("v1", "v2"):
            bob = bearer((await env.login("bob", version=version))["access_token"])
            own = await env.http.post("/api/v1/authz/check", json=_check("bob"), headers=bob)
            assert own.status_code == 200 and own.json()["allowed"] is True
            other = await env.http.post("/api/v1/authz/check", json=_check("alice"), headers=bob)
            assert other.status_code == 403, other.text
            assert other.json()["error"]["details"]["required_scope"] == "authz:check"
            for method, path, body in [
                ("POST", "/api/v1/authz/check", {**_check("bob"), "subject": {"id": "alice"}}),
                ("POST", "/api/v1/authz/check/batch", {"checks": [_check("bob"), _check("x")]}),
                ("POST", "/access/v1/evaluation", _evaluation("alice")),
                (
                    "POST",
                    "/access/v1/evaluations",
                    {**_evaluation("bob"), "evaluations": [{}, {"subject": {"id": "carol"}}]},
                ),
                ("GET", "/api/v1/users/carol/permissions", None),
                ("POST", "/api/v1/users/permissions/batch", {"user_ids": ["bob", "carol"]}),
                ("GET", "/api/v1/authz/subjects?resource=api:policies&action=write", None),
                ("GET", "/api/v1/authz/objects?subject=carol&action=write", None),
            ]:
                kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
                r = await env.http.request(method, path, headers=bob, **kwargs)
                assert r.status_code == 403, (version, path, r.text)
                assert r.json()["error"]["code"] == "RBAC_002"
            for method, path, body in [
                ("POST", "/access/v1/evaluations", {**_evaluation("bob"), "evaluations": [{}]}),
                ("GET", "/api/v1/users/bob/permissions", None),
                ("GET", "/api/v1/authz/objects?subject=bob&action=read", None),
                ("POST", "/api/v1/users/permissions/batch", {"user_ids": ["bob"]}),
            ]:
                r = await env.http.request(method, path, headers=bob, json=body)
                assert r.status_code == 200, (version, path, r.text)


async def test_decision_clients_and_administrators(
    token_app_factory: AppFactory, asking_policy: Path
) -> None:
    async with token_app_factory(
        decision_auth="token", admin_api_key=KEY, policy_dir=asking_policy
    ) as env:
        env.secrets["other"] = await add_client(env.settings, "other")
        web = await _client_token(env, "web")
        other = await _client_token(env, "other")
        r = await env.http.post("/api/v1/authz/check", json=_check("alice"), headers=web)
        assert r.status_code == 200, r.text
        r = await env.http.post("/access/v1/evaluation", json=_evaluation("carol"), headers=web)
        assert r.status_code == 200
        # a decision client may decide, not list who holds what
        subjects = "/api/v1/authz/subjects?resource=api:policies&action=write"
        assert (await env.http.get(subjects, headers=web)).status_code == 403
        # a client without the decision scope is an ordinary caller
        r = await env.http.post("/api/v1/authz/check", json=_check("alice"), headers=other)
        assert r.status_code == 403
        carol = bearer((await env.login("carol"))["access_token"])
        for headers in (carol, {"X-API-Key": KEY}):
            assert (await env.http.get(subjects, headers=headers)).status_code == 200
            r = await env.http.get("/api/v1/users/alice/permissions", headers=headers)
            assert r.status_code == 200


async def test_token_validation_needs_client_authentication(
    token_app_factory: AppFactory, asking_policy: Path
) -> None:
    async with token_app_factory(
        decision_auth="token", admin_api_key=KEY, policy_dir=asking_policy
    ) as env:
        issued = await env.login("bob")
        token = issued["access_token"]
        body = {"token": token}
        anonymous = await env.http.post("/api/v1/tokens/validate", json=body)
        assert anonymous.status_code == 401
        own = await env.http.post("/api/v1/tokens/validate", json=body, headers=bearer(token))
        assert own.status_code == 403
        batch = await env.http.post(
            "/api/v1/tokens/validate/batch", json={"tokens": [token]}, headers=bearer(token)
        )
        assert batch.status_code == 403
        web = await _client_token(env, "web")
        ok = await env.http.post("/api/v1/tokens/validate", json=body, headers=web)
        assert ok.status_code == 200 and ok.json()["valid"] is True
        assert ok.headers["cache-control"] == "no-store"
        # revocation is visible to the resource server at once
        out = await env.http.post("/api/v1/auth/logout", headers=bearer(token))
        assert out.status_code == 204
        gone = await env.http.post("/api/v1/tokens/validate", json=body, headers=web)
        assert gone.json()["valid"] is False
        assert gone.json()["error"]["code"] == "AUTH_005"
