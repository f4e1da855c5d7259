"""The database disappears under a running instance: 503, never 500, and validation keeps
answering from the in-process revocation store."""

from __future__ import annotations

from tests.support import services as svc
from tests.support.tokens import PASSWORD, AppFactory


async def test_database_outage_is_503(token_app_factory: AppFactory, pg_url: str) -> None:
    async with token_app_factory(database_url=pg_url) as env:
        tokens = await env.login("alice")
        svc.drop_pg_database(pg_url.rsplit("/", 1)[1])  # terminates every connection

        r = await env.http.post(
            "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
        )
        assert r.status_code == 503 and r.json()["error"]["code"] == "SYS_001"
        assert r.json()["error"]["details"] == {"dependency": "database"}

        oauth = await env.oauth("token", "web", {"grant_type": "client_credentials"})
        assert oauth.status_code == 503 and oauth.json()["error"] == "temporarily_unavailable"

        # no Redis: the complete in-process revocation store still answers
        assert (await env.validate(tokens["access_token"]))["valid"] is True
