"""Refresh tokens on both database backends: rotation, reuse detection (the whole family
and its access tokens die), races, expiry, disabled clients."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.store.audit_log import AuditQuery
from app.store.database import Database
from app.store.models import RefreshToken
from app.tokens.refresh_tokens import hash_refresh_token
from app.tokens.service import disable_client
from tests.support.tokens import PASSWORD, AppFactory, TokenApp, claims_of


async def _refresh(env: TokenApp, token: str) -> tuple[int, dict[str, object]]:
    r = await env.http.post("/api/v1/auth/refresh", json={"refresh_token": token})
    return r.status_code, r.json()


async def test_rotation_chain_and_reuse_detection(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url) as env:
        first = await env.login("alice")
        chain = [first]
        for _ in range(3):
            status, body = await _refresh(env, str(chain[-1]["refresh_token"]))
            assert status == 200
            chain.append(body)
        assert len({str(t["refresh_token"]) for t in chain}) == 4
        sessions = {claims_of(str(t["access_token"]))["sid"] for t in chain}
        assert len(sessions) == 1  # one family
        other_session = await env.login("alice")

        # an old token comes back: someone else holds it
        status, body = await _refresh(env, str(chain[1]["refresh_token"]))
        assert status == 401
        assert body["error"]["details"] == {"reason": "reuse_detected"}  # type: ignore[index]
        # the whole family is revoked, including the newest refresh and every access token
        status, body = await _refresh(env, str(chain[-1]["refresh_token"]))
        assert status == 401 and body["error"]["code"] == "AUTH_005"  # type: ignore[index]
        for tokens in chain:
            result = await env.validate(str(tokens["access_token"]))
            assert result["error"]["details"]["reason"] == "session_revoked"
        # other sessions of the same user are untouched
        assert (await env.validate(other_session["access_token"]))["valid"] is True
        assert (await _refresh(env, other_session["refresh_token"]))[0] == 200
        # the replay is a security alert: audited once, counted, no token in the record
        async with env.services.db.sessions() as session:
            page = await env.services.audit.query(session, AuditQuery(action="alert.*"))
        (alert,) = page.items
        assert alert.action == "alert.refresh_reuse" and alert.target == f"session:{sessions.pop()}"
        assert str(chain[1]["refresh_token"]) not in str(alert.as_dict())
        metrics = (await env.http.get("/metrics")).text
        assert 'oms_auth_security_alerts_total{kind="refresh_reuse"} 1.0' in metrics


async def test_concurrent_refreshes_never_both_succeed_without_grace(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, refresh_reuse_grace=0) as env:
        token = (await env.login("alice"))["refresh_token"]
        results = await asyncio.gather(*(_refresh(env, token) for _ in range(5)))
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 401, 401, 401, 401]
        (winner,) = [body for status, body in results if status == 200]
        # the race looked like reuse, so even the winner's session is revoked
        assert (await _refresh(env, str(winner["refresh_token"])))[0] == 401


async def test_expired_refresh_token(token_app_factory: AppFactory, database_url: str) -> None:
    async with token_app_factory(database_url=database_url) as env:
        token = (await env.login("alice"))["refresh_token"]
        db = Database(database_url)
        try:
            async with db.transaction() as s:
                await s.execute(
                    update(RefreshToken)
                    .where(RefreshToken.token_hash == hash_refresh_token(token))
                    .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
                )
        finally:
            await db.close()
        status, body = await _refresh(env, token)
        assert status == 401 and body["error"]["code"] == "AUTH_002"  # type: ignore[index]
        assert "expired_at" in body["error"]["details"]  # type: ignore[index]


async def test_disabled_client_cannot_authenticate(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url) as env:
        data = {"grant_type": "password", "username": "alice", "password": PASSWORD}
        tokens = (await env.oauth("token", "web", data)).json()
        assert await disable_client(
            "web", clients=env.tokens.clients, revocations=env.tokens.service.revocations
        )
        r = await env.oauth("token", "web", data)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = await env.oauth(
            "token",
            "web",
            {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert r.status_code == 401
