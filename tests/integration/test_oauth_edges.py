"""OAuth edge cases per RFC 7009 §2.1, RFC 7662 §2.1 and RFC 6749 §5.2, on PostgreSQL and
Redis: a token type hint is only a hint, a missing grant_type is invalid_request, and a
client-credentials token never carries an empty scope."""

from __future__ import annotations

from tests.support.tokens import PASSWORD, AppFactory, bearer, claims_of


async def test_hints_never_change_the_answer(
    token_app_factory: AppFactory, pg_url: str, redis_url: str
) -> None:
    async with token_app_factory(database_url=pg_url, redis_url=redis_url) as env:
        got = await env.oauth(
            "token", "web", {"grant_type": "password", "username": "alice", "password": PASSWORD}
        )
        issued = got.json()
        access, refresh = issued["access_token"], issued["refresh_token"]
        for hint in ("refresh_token", "access_token", "something_else", ""):
            seen = await env.oauth("introspect", "web", {"token": access, "token_type_hint": hint})
            assert seen.status_code == 200, seen.text
            assert seen.json()["active"] is True, hint
            seen = await env.oauth("introspect", "web", {"token": refresh, "token_type_hint": hint})
            assert seen.json()["active"] is True, hint
        # revoking an access token under the wrong hint revokes it
        done = await env.oauth(
            "revoke", "web", {"token": access, "token_type_hint": "refresh_token"}
        )
        assert done.status_code == 200, done.text
        gone = await env.oauth("introspect", "web", {"token": access})
        assert gone.json() == {"active": False}
        me = await env.http.get("/api/v1/auth/me", headers=bearer(access))
        assert me.status_code == 401 and me.json()["error"]["code"] == "AUTH_005"
        # an unknown hint is ignored on revocation too
        done = await env.oauth("revoke", "web", {"token": refresh, "token_type_hint": "nope"})
        assert done.status_code == 200
        gone = await env.oauth("introspect", "web", {"token": refresh})
        assert gone.json() == {"active": False}
        # the token parameter is still required
        missing = await env.oauth("revoke", "web", {"token_type_hint": "access_token"})
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


async def test_missing_grant_type_is_invalid_request(token_app_factory: AppFactory) -> None:
    async with token_app_factory() as env:
        r = await env.oauth("token", "web", {"scope": "api:schemas:read"})
        assert r.status_code == 400
        assert r.json()["error"] == "invalid_request"
        assert r.headers["cache-control"] == "no-store"
        unknown = await env.oauth("token", "web", {"grant_type": "magic"})
        assert unknown.json()["error"] == "unsupported_grant_type"


async def test_client_credentials_tokens_carry_no_empty_scope(
    token_app_factory: AppFactory,
) -> None:
    async with token_app_factory() as env:
        r = await env.oauth("token", "web", {"grant_type": "client_credentials"})
        assert r.status_code == 200, r.text
        assert "scope" not in r.json()
        assert "scope" not in claims_of(r.json()["access_token"])
        seen = await env.oauth("introspect", "web", {"token": r.json()["access_token"]})
        assert seen.json()["active"] is True and "scope" not in seen.json()
