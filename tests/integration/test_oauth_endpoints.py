"""RFC 7662 introspection, RFC 7009 revocation, RFC 8414 metadata and the JWKS: shapes."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from tests.support.tokens import PASSWORD, AppFactory, TokenApp, add_client, claims_of

RFC7662_FIELDS = {
    "active",
    "scope",
    "client_id",
    "username",
    "token_type",
    "exp",
    "iat",
    "nbf",
    "sub",
    "aud",
    "iss",
    "jti",
}


async def _oauth_tokens(env: TokenApp, **extra: str) -> dict[str, str]:
    r = await env.oauth(
        "token",
        "web",
        {"grant_type": "password", "username": "alice", "password": PASSWORD, **extra},
    )
    assert r.status_code == 200
    body: dict[str, str] = r.json()
    return body


async def test_introspection_of_an_active_access_token(token_app: TokenApp) -> None:
    tokens = await _oauth_tokens(token_app, scope="api:schemas:read")
    r = await token_app.oauth("introspect", "web", {"token": tokens["access_token"]})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) >= RFC7662_FIELDS
    claims = claims_of(tokens["access_token"])
    assert body["active"] is True and body["token_type"] == "Bearer"
    assert body["scope"] == "api:schemas:read" and body["username"] == "alice"
    for name in ("client_id", "exp", "iat", "nbf", "sub", "aud", "iss", "jti"):
        assert body[name] == claims[name], name


async def test_introspection_of_a_refresh_token(token_app: TokenApp) -> None:
    tokens = await _oauth_tokens(token_app)
    body = (
        await token_app.oauth(
            "introspect",
            "web",
            {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        )
    ).json()
    assert body["active"] is True and body["token_type"] == "refresh_token"
    assert body["username"] == "alice" and body["client_id"] == "web"
    assert body["exp"] > body["iat"]


async def test_inactive_tokens_say_only_active_false(token_app: TokenApp) -> None:
    tokens = await _oauth_tokens(token_app)
    bound = await token_app.login("bob", fingerprint="dev-1")
    await token_app.oauth("revoke", "web", {"token": tokens["access_token"]})
    for token in (tokens["access_token"], "garbage", "omsrt_unknown", ""):
        r = await token_app.oauth("introspect", "web", {"token": token})
        assert r.status_code == 200 and r.json() == {"active": False}, token
    # device binding is checked when the caller passes the fingerprint, and reported as fpt
    plain = (await token_app.oauth("introspect", "web", {"token": bound["access_token"]})).json()
    assert plain["active"] is True and len(plain["fpt"]) == 64
    wrong = await token_app.oauth(
        "introspect", "web", {"token": bound["access_token"], "device_fingerprint": "other"}
    )
    assert wrong.json() == {"active": False}


async def test_introspection_requires_client_authentication(token_app: TokenApp) -> None:
    tokens = await _oauth_tokens(token_app)
    anonymous = await token_app.http.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}
    )
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    wrong = await token_app.http.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=("web", "nope")
    )
    assert wrong.status_code == 401
    missing = await token_app.oauth("introspect", "web", {})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    bad_hint = await token_app.oauth(
        "introspect", "web", {"token": "x", "token_type_hint": "id_token"}
    )
    # an unknown hint is ignored (RFC 7662 §2.1), not refused
    assert bad_hint.status_code == 200 and bad_hint.json() == {"active": False}


async def test_revocation_rfc7009(token_app_factory: AppFactory) -> None:
    async with token_app_factory() as env:
        env.secrets["other"] = await add_client(env.settings, "other")
        tokens = await _oauth_tokens(env)
        for token in ("garbage", "omsrt_nothing", tokens["access_token"] + "x"):
            r = await env.oauth("revoke", "web", {"token": token})
            assert r.status_code == 200 and r.json() == {}
        # another client may not revoke web's tokens
        foreign = await env.oauth("revoke", "other", {"token": tokens["access_token"]})
        assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_grant"
        assert (await env.validate(tokens["access_token"]))["valid"] is True
        r = await env.oauth("revoke", "web", {"token": tokens["access_token"]})
        assert r.status_code == 200 and r.json() == {}
        assert (await env.validate(tokens["access_token"]))["error"]["code"] == "AUTH_005"
        # revoking it again is still 200
        assert (
            await env.oauth("revoke", "web", {"token": tokens["access_token"]})
        ).status_code == 200
        anonymous = await env.http.post("/oauth/revoke", data={"token": tokens["access_token"]})
        assert anonymous.status_code == 401


async def test_revoking_a_refresh_token_ends_its_session(token_app: TokenApp) -> None:
    tokens = await _oauth_tokens(token_app)
    r = await token_app.oauth(
        "revoke", "web", {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    )
    assert r.status_code == 200
    refresh = await token_app.oauth(
        "token", "web", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refresh.json()["error"] == "invalid_grant"
    result = await token_app.validate(tokens["access_token"])
    assert result["error"]["details"] == {"reason": "session_revoked"}


async def test_rfc8414_metadata(
    token_app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with token_app_factory(issuer="https://auth.example.com") as env:
        r = await env.http.get("/.well-known/oauth-authorization-server")
        assert r.status_code == 200
        meta = r.json()
        AuthorizationServerMetadata(meta).validate()  # Authlib's RFC 8414 checks
        assert meta["issuer"] == "https://auth.example.com"
        assert meta["token_endpoint"] == "https://auth.example.com/oauth/token"
        assert meta["jwks_uri"] == "https://auth.example.com/.well-known/jwks.json"
        assert meta["revocation_endpoint"].endswith("/oauth/revoke")
        assert meta["introspection_endpoint"].endswith("/oauth/introspect")
        assert set(meta["grant_types_supported"]) == {
            "password",
            "client_credentials",
            "refresh_token",
        }
        assert "client_secret_basic" in meta["token_endpoint_auth_methods_supported"]
        token = (await env.login("alice"))["access_token"]
        assert claims_of(token)["iss"] == meta["issuer"]


async def test_jwks_document(token_app: TokenApp) -> None:
    r = await token_app.http.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/jwk-set+json")
    assert "max-age" in r.headers["cache-control"]
    (key,) = r.json()["keys"]
    assert {"kty", "kid", "alg", "use", "n", "e"} <= set(key)
