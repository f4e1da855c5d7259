"""`/api/v1|v2/auth/*`: login, refresh, logout, me; credentials never reveal which users exist."""

from __future__ import annotations

import pytest

from tests.support.tokens import PASSWORD, TokenApp, add_user, bearer, claims_of, header_of
from tests.support.waiting import wait_for

RFC9068_CLAIMS = {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "roles"}


async def test_v1_login_token_has_no_scope(token_app: TokenApp) -> None:
    body = await token_app.login("alice", version="v1")
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
    }
    assert header_of(body["access_token"])["typ"] == "at+jwt"
    assert header_of(body["access_token"])["kid"] in token_app.tokens.keys.published_kids
    claims = claims_of(body["access_token"])
    assert set(claims) >= RFC9068_CLAIMS and "scope" not in claims
    assert claims["iss"] == token_app.settings.issuer and claims["aud"] == "oms-api"
    assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]
    assert claims["is_admin"] is False and claims["client_id"] == token_app.settings.service_name


async def test_v2_login_carries_effective_permissions(token_app: TokenApp) -> None:
    scope = claims_of((await token_app.login("alice"))["access_token"])["scope"].split()
    snapshot = token_app.services.engine.snapshot
    assert scope == snapshot.allowed_scopes("alice")
    assert "api:schemas:write" in scope and "api:policies:read" in scope
    bob = claims_of((await token_app.login("bob"))["access_token"])["scope"].split()
    assert "api:schemas:write" not in bob and "api:schemas:read" in bob
    carol = claims_of((await token_app.login("carol"))["access_token"])
    assert carol["is_admin"] is True and "api:*:*" in carol["scope"].split()


async def test_v2_requested_scope_is_intersected(token_app: TokenApp) -> None:
    body = await token_app.login(
        "alice", scope="api:schemas:read api:policies:write api:branches:feature-x:write"
    )
    # a concrete scope the engine allows is granted even though the policy writes a pattern
    assert body["scope"] == "api:schemas:read api:branches:feature-x:write"
    denied = await token_app.login(
        "alice", scope="api:branches:main:write", expect=403
    )  # a deny rule carves main out of the developer's branches:* pattern
    assert denied["error"]["code"] == "AUTH_003"
    bad = await token_app.login("alice", scope='bad"scope', expect=422)
    assert bad["error"]["code"] == "REQ_001"


async def test_same_answer_for_unknown_user_wrong_password_and_disabled(
    token_app: TokenApp,
) -> None:
    await token_app.tokens.service.disable_user("bob")
    hasher = token_app.tokens.hasher
    answers = []
    for username, password in (
        ("alice", "wrong-password"),
        ("nobody", PASSWORD),
        ("bob", PASSWORD),
    ):
        before = hasher.verifications
        answers.append(await token_app.login(username, password, expect=401))
        # unknown users are verified against a dummy hash: the same argon2 work each time
        assert hasher.verifications == before + 1
    codes = {(a["error"]["code"], a["error"]["message"]) for a in answers}
    assert codes == {("AUTH_001", "Invalid username or password")}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "alice"},
        {"username": "", "password": "x"},
        {"username": "a", "password": 5},
    ],
)
async def test_login_validation_errors(token_app: TokenApp, body: dict[str, object]) -> None:
    r = await token_app.http.post("/api/v1/auth/login", json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "REQ_001"


async def test_refresh_rotates_and_keeps_version(token_app: TokenApp) -> None:
    first = await token_app.login("alice", version="v1")
    r = await token_app.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert "scope" not in claims_of(second["access_token"])  # v1 stays v1
    v2 = await token_app.login("alice")
    r = await token_app.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": v2["refresh_token"]}
    )
    assert "scope" in claims_of(r.json()["access_token"])


@pytest.mark.parametrize(
    ("refresh_token", "code"), [("omsrt_unknown", "AUTH_004"), ("x", "AUTH_004")]
)
async def test_refresh_errors(token_app: TokenApp, refresh_token: str, code: str) -> None:
    r = await token_app.http.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert r.status_code == 401 and r.json()["error"]["code"] == code


async def test_me(token_app: TokenApp) -> None:
    tokens = await token_app.login("carol")
    r = await token_app.http.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200
    me = r.json()
    assert me["subject"] == "carol" and me["is_admin"] is True
    assert me["roles"] == ["admin", "developer", "viewer"]
    assert me["token"]["version"] == "v2" and me["token"]["client_id"]
    missing = await token_app.http.get("/api/v1/auth/me")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "AUTH_001"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    garbage = await token_app.http.get("/api/v1/auth/me", headers=bearer("garbage"))
    assert garbage.status_code == 401 and garbage.json()["error"]["code"] == "AUTH_004"
    assert 'error="invalid_token"' in garbage.headers["www-authenticate"]


async def test_logout_revokes_access_and_refresh(token_app: TokenApp) -> None:
    tokens = await token_app.login("alice")
    other = await token_app.login("alice")  # another session stays alive
    r = await token_app.http.post(
        "/api/v1/auth/logout",
        headers=bearer(tokens["access_token"]),
        json={"refresh_token": tokens["refresh_token"]},
    )
    assert r.status_code == 204
    me = await token_app.http.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401 and me.json()["error"]["code"] == "AUTH_005"
    refresh = await token_app.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401 and refresh.json()["error"]["code"] == "AUTH_005"
    assert (await token_app.validate(other["access_token"]))["valid"] is True
    again = await token_app.http.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert again.status_code == 401


async def test_logout_without_body_revokes_the_session(token_app: TokenApp) -> None:
    tokens = await token_app.login("alice", version="v1")
    r = await token_app.http.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert r.status_code == 204
    refresh = await token_app.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.json()["error"]["code"] == "AUTH_005"


async def test_needs_rehash_upgrades_the_stored_hash(token_app: TokenApp) -> None:
    stronger = token_app.settings.model_copy(update={"argon2_time_cost": 3})
    await add_user(stronger, "zoe")
    assert "t=3" in (await _hash_of(token_app, "zoe"))
    await token_app.login("zoe", version="v1")

    async def upgraded() -> bool:  # after the answer, off the request path
        return "t=1" in (await _hash_of(token_app, "zoe"))  # the service's current cost

    await wait_for(upgraded, timeout=20)


async def _hash_of(env: TokenApp, username: str) -> str:
    user = await env.tokens.users.by_username(username)
    assert user is not None
    return user.password_hash


async def test_token_metrics_are_exported(token_app: TokenApp) -> None:
    tokens = await token_app.login("alice")
    await token_app.validate(tokens["access_token"])
    await token_app.login("alice", "wrong-password", expect=401)
    text = (await token_app.http.get("/metrics")).text
    assert 'oms_auth_tokens_issued_total{grant="password",kind="access",version="v2"} 1.0' in text
    assert 'oms_auth_token_validations_total{result="valid"} 1.0' in text
    assert 'oms_auth_logins_total{result="failed"} 1.0' in text
