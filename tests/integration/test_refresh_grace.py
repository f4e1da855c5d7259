"""The refresh reuse grace period: a retried refresh (its answer lost) gets the same successor;
beyond the grace period, or once the successor was used, reuse detection as before."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.store.database import Database
from app.store.models import RefreshToken
from app.tokens.refresh_tokens import hash_refresh_token, open_successor, seal_successor
from tests.support.tokens import AppFactory, TokenApp, claims_of


async def _refresh(env: TokenApp, token: str) -> tuple[int, dict[str, object]]:
    r = await env.http.post("/api/v1/auth/refresh", json={"refresh_token": token})
    return r.status_code, r.json()


async def _alerts(env: TokenApp) -> str:
    return (await env.http.get("/metrics")).text


async def test_a_retry_within_grace_gets_the_same_successor(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, refresh_reuse_grace=30) as env:
        login = await env.login("alice")
        status, first = await _refresh(env, login["refresh_token"])
        assert status == 200
        # the answer was lost; the client retries with the token it still has
        status, retry = await _refresh(env, login["refresh_token"])
        assert status == 200, retry
        assert retry["refresh_token"] == first["refresh_token"]
        assert retry["access_token"] != first["access_token"]
        assert (
            claims_of(str(retry["access_token"]))["sid"] == claims_of(login["access_token"])["sid"]
        )
        # the session lives on: no alert, every access token valid, the successor rotates
        assert (await env.validate(login["access_token"]))["valid"] is True
        assert (await env.validate(str(retry["access_token"])))["valid"] is True
        status, nxt = await _refresh(env, str(retry["refresh_token"]))
        assert status == 200 and nxt["refresh_token"] != retry["refresh_token"]
        assert 'kind="refresh_reuse"' not in await _alerts(env)


async def test_once_the_successor_was_used_a_retry_is_reuse(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, refresh_reuse_grace=30) as env:
        login = await env.login("alice")
        _, successor = await _refresh(env, login["refresh_token"])
        _, newest = await _refresh(env, str(successor["refresh_token"]))
        status, body = await _refresh(env, login["refresh_token"])
        assert status == 401
        assert body["error"]["details"] == {"reason": "reuse_detected"}  # type: ignore[index]
        assert (await _refresh(env, str(newest["refresh_token"])))[0] == 401  # family revoked
        assert 'oms_auth_security_alerts_total{kind="refresh_reuse"} 1.0' in await _alerts(env)


async def test_beyond_grace_a_retry_is_reuse(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, refresh_reuse_grace=5) as env:
        login = await env.login("alice")
        _, successor = await _refresh(env, login["refresh_token"])
        db = Database(database_url)
        try:
            async with db.transaction() as s:
                await s.execute(
                    update(RefreshToken)
                    .where(RefreshToken.token_hash == hash_refresh_token(login["refresh_token"]))
                    .values(rotated_at=datetime.now(UTC) - timedelta(seconds=6))
                )
        finally:
            await db.close()
        status, body = await _refresh(env, login["refresh_token"])
        assert status == 401
        assert body["error"]["details"] == {"reason": "reuse_detected"}  # type: ignore[index]
        assert (await _refresh(env, str(successor["refresh_token"])))[0] == 401


async def test_concurrent_refreshes_share_one_successor(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, refresh_reuse_grace=30) as env:
        token = (await env.login("alice"))["refresh_token"]
        results = await asyncio.gather(*(_refresh(env, token) for _ in range(5)))
        assert [status for status, _ in results] == [200] * 5, results
        successors = {str(body["refresh_token"]) for _, body in results}
        assert len(successors) == 1  # one rotation, never two live branches of a family
        assert (await _refresh(env, successors.pop()))[0] == 200
        assert 'kind="refresh_reuse"' not in await _alerts(env)


def test_only_the_presented_token_opens_its_successor() -> None:
    sealed = seal_successor("omsrt_presented", "omsrt_successor")
    assert open_successor("omsrt_presented", sealed) == "omsrt_successor"
    assert open_successor("omsrt_other", sealed) is None
    assert open_successor("omsrt_presented", sealed[:-1] + bytes([sealed[-1] ^ 1])) is None
    assert b"omsrt_successor" not in sealed
