"""`POST /oauth/token`: every grant, and every RFC 6749 error it can answer."""

from __future__ import annotations

import base64

import pytest

from tests.support.tokens import PASSWORD, AppFactory, TokenApp, add_client, claims_of


def _assert_oauth_error(r: object, status: int, error: str) -> None:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["error"] == error
    assert set(body) <= {"error", "error_description", "error_uri", "limit", "window"}
    assert r.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]


async def test_password_grant_issues_scoped_tokens(token_app: TokenApp) -> None:
    r = await token_app.oauth(
        "token", "web", {"grant_type": "password", "username": "alice", "password": PASSWORD}
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["refresh_token"].startswith("omsrt_")
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "alice" and claims["client_id"] == "web"
    assert "api:schemas:write" in claims["scope"].split()
    assert body["scope"] == claims["scope"]
    assert claims["roles"] == ["developer", "viewer"]
    assert (await token_app.validate(body["access_token"]))["valid"] is True
    bound = await token_app.oauth(
        "token",
        "web",
        {"grant_type": "password", "username": "alice", "password": PASSWORD},
        headers={"X-Device-Fingerprint": "tablet-9"},
    )
    token = bound.json()["access_token"]
    assert "fpt" in claims_of(token)
    assert (await token_app.validate(token))["error"]["code"] == "AUTH_006"
    assert (await token_app.validate(token, device_fingerprint="tablet-9"))["valid"] is True


async def test_password_grant_with_client_secret_post(token_app: TokenApp) -> None:
    r = await token_app.http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "bob",
            "password": PASSWORD,
            "client_id": "web",
            "client_secret": token_app.secrets["web"],
            "scope": "api:schemas:read api:schemas:write",
        },
    )
    assert r.status_code == 200
    # bob (viewer) may read but not write: the token gets what is both asked and allowed
    assert r.json()["scope"] == "api:schemas:read"


async def test_client_credentials_grant(token_app_factory: AppFactory) -> None:
    async with token_app_factory() as env:
        env.secrets["ci-pipeline"] = await add_client(
            env.settings, "ci-pipeline", scopes=["api:schemas:*", "api:*:read"]
        )
        r = await env.oauth("token", "ci-pipeline", {"grant_type": "client_credentials"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert "refresh_token" not in body
        claims = claims_of(body["access_token"])
        assert claims["sub"] == "client:ci-pipeline"
        assert claims["roles"] == ["developer", "viewer"]  # `g, client:ci-pipeline, developer`
        scope = claims["scope"].split()
        assert "api:schemas:read" in scope and "api:ontologies:read" in scope
        # developer writes are cut by the client's allowed scopes (reads only, except schemas)
        assert "api:ontologies:write" not in scope
        assert (await env.validate(body["access_token"]))["valid"] is True


async def test_refresh_token_grant_rotates(token_app: TokenApp) -> None:
    first = (
        await token_app.oauth(
            "token",
            "web",
            {"grant_type": "password", "username": "alice", "password": PASSWORD},
        )
    ).json()
    r = await token_app.oauth(
        "token", "web", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["access_token"])["sid"] == claims_of(first["access_token"])["sid"]
    narrowed = await token_app.oauth(
        "token",
        "web",
        {
            "grant_type": "refresh_token",
            "refresh_token": second["refresh_token"],
            "scope": "api:schemas:read",
        },
    )
    assert narrowed.json()["scope"] == "api:schemas:read"
    reuse = await token_app.oauth(
        "token", "web", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    _assert_oauth_error(reuse, 400, "invalid_grant")
    assert "already used" in reuse.json()["error_description"]


async def test_refresh_token_of_another_client_is_invalid_grant(
    token_app_factory: AppFactory,
) -> None:
    async with token_app_factory() as env:
        env.secrets["other"] = await add_client(env.settings, "other")
        tokens = (
            await env.oauth(
                "token",
                "web",
                {"grant_type": "password", "username": "alice", "password": PASSWORD},
            )
        ).json()
        r = await env.oauth(
            "token",
            "other",
            {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        _assert_oauth_error(r, 400, "invalid_grant")


async def test_wrong_and_unknown_credentials_are_the_same_invalid_grant(
    token_app: TokenApp,
) -> None:
    wrong = await token_app.oauth(
        "token", "web", {"grant_type": "password", "username": "alice", "password": "nope-nope"}
    )
    unknown = await token_app.oauth(
        "token", "web", {"grant_type": "password", "username": "mallory", "password": "x" * 9}
    )
    _assert_oauth_error(wrong, 400, "invalid_grant")
    _assert_oauth_error(unknown, 400, "invalid_grant")
    assert wrong.json() == unknown.json()


async def test_client_authentication_errors(token_app: TokenApp) -> None:
    data = {"grant_type": "client_credentials"}
    bad_secret = await token_app.http.post("/oauth/token", data=data, auth=("web", "wrong"))
    _assert_oauth_error(bad_secret, 401, "invalid_client")
    assert bad_secret.headers["www-authenticate"].startswith("Basic")
    unknown = await token_app.http.post("/oauth/token", data=data, auth=("ghost", "x"))
    _assert_oauth_error(unknown, 401, "invalid_client")
    anonymous = await token_app.http.post("/oauth/token", data=data)
    _assert_oauth_error(anonymous, 401, "invalid_client")
    garbage = await token_app.http.post(
        "/oauth/token",
        data=data,
        headers={"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()},
    )
    assert garbage.status_code in (400, 401) and garbage.json()["error"] == "invalid_client"


async def test_grant_not_allowed_for_client(token_app_factory: AppFactory) -> None:
    async with token_app_factory() as env:
        env.secrets["m2m"] = await add_client(env.settings, "m2m", grants=["client_credentials"])
        r = await env.oauth(
            "token", "m2m", {"grant_type": "password", "username": "alice", "password": PASSWORD}
        )
        _assert_oauth_error(r, 400, "unauthorized_client")
        r = await env.oauth("token", "m2m", {"grant_type": "refresh_token", "refresh_token": "x"})
        _assert_oauth_error(r, 400, "unauthorized_client")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "alice"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "omsrt_unknown"}, "invalid_grant"),
        ({"grant_type": "client_credentials", "scope": 'bad"scope'}, "invalid_scope"),
        (
            {
                "grant_type": "password",
                "username": "bob",
                "password": PASSWORD,
                "scope": "api:policies:write",
            },
            "invalid_scope",
        ),
    ],
)
async def test_request_errors(token_app: TokenApp, data: dict[str, str], error: str) -> None:
    r = await token_app.oauth("token", "web", data)
    _assert_oauth_error(r, 400, error)


async def test_malformed_bodies_are_invalid_request(token_app: TokenApp) -> None:
    auth = ("web", token_app.secrets["web"])
    as_json = await token_app.http.post(
        "/oauth/token", json={"grant_type": "client_credentials"}, auth=auth
    )
    _assert_oauth_error(as_json, 400, "invalid_request")
    repeated = await token_app.http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&grant_type=password",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=auth,
    )
    _assert_oauth_error(repeated, 400, "invalid_request")
    not_utf8 = await token_app.http.post(
        "/oauth/token",
        content=b"grant_type=%ff%fe",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=auth,
    )
    _assert_oauth_error(not_utf8, 400, "invalid_request")


async def test_https_policy(token_app_factory: AppFactory) -> None:
    async with token_app_factory(require_https=True) as env:
        r = await env.oauth("token", "web", {"grant_type": "client_credentials"})
        _assert_oauth_error(r, 400, "invalid_request")
        assert "HTTPS" in r.json()["error_description"]
