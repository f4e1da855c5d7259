"""No token, password, client secret or device fingerprint ever reaches a log line, a Redis
key or a database column, through a full login / refresh / revoke flow at DEBUG level."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from app.store.database import Database
from app.store.models import RefreshToken
from tests.support.tokens import PASSWORD, AppFactory, TokenApp, add_user, bearer


async def _flow(env: TokenApp) -> list[str]:
    """Exercise every credential path; return every secret that was used or handed out."""
    secrets = [PASSWORD, env.secrets["web"], "wrong-password-123", "device-fp-7f3a9c"]
    v1 = await env.login("alice", version="v1")
    v2 = await env.login("bob", fingerprint="device-fp-7f3a9c")
    await env.login("alice", "wrong-password-123", expect=401)
    await env.login("ghost-user", "wrong-password-123", expect=401)
    refreshed = (
        await env.http.post(
            "/api/v1/auth/refresh",
            json={"refresh_token": v2["refresh_token"]},
            headers={"X-Device-Fingerprint": "device-fp-7f3a9c"},
        )
    ).json()
    reuse = await env.http.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": v2["refresh_token"]},
        headers={"X-Device-Fingerprint": "device-fp-7f3a9c"},
    )
    assert reuse.status_code == 401
    oauth = (
        await env.oauth(
            "token", "web", {"grant_type": "password", "username": "carol", "password": PASSWORD}
        )
    ).json()
    rotated = (
        await env.oauth(
            "token", "web", {"grant_type": "refresh_token", "refresh_token": oauth["refresh_token"]}
        )
    ).json()
    machine = (await env.oauth("token", "web", {"grant_type": "client_credentials"})).json()
    await env.oauth("introspect", "web", {"token": rotated["access_token"]})
    await env.oauth("revoke", "web", {"token": rotated["refresh_token"]})
    await env.http.post(
        "/api/v1/tokens/validate/batch",
        json={"tokens": [v1["access_token"], machine["access_token"], "x.y.z"]},
    )
    await env.http.get("/api/v1/auth/me", headers=bearer(v1["access_token"]))
    await env.http.post(
        "/api/v1/auth/logout",
        headers=bearer(v1["access_token"]),
        json={"refresh_token": v1["refresh_token"]},
    )
    await env.http.get("/api/v1/auth/me", headers=bearer(v1["access_token"]))  # AUTH_005
    # a login that upgrades the stored hash writes a password hash: it must not show either
    await add_user(env.settings.model_copy(update={"argon2_time_cost": 2}), "zoe")
    old_hash = await _hash_of(env, "zoe")
    await env.login("zoe", version="v1")
    secrets += [old_hash, await _hash_of(env, "zoe")]
    for bundle in (v1, v2, refreshed, oauth, rotated, machine):
        secrets.extend(v for k, v in bundle.items() if k in ("access_token", "refresh_token"))
    return secrets


async def _hash_of(env: TokenApp, username: str) -> str:
    user = await env.tokens.users.by_username(username)
    assert user is not None
    return user.password_hash


def _leaks(text: str, secrets: list[str]) -> list[str]:
    found = []
    for secret in secrets:
        pieces = [secret]
        if secret.count(".") == 2:  # a JWT: no part of its payload or signature either
            pieces += secret.split(".")[1:]
        found += [p[:12] for p in pieces if p and p in text]
    return found


@pytest.mark.parametrize("json_logs", [True, False])
async def test_logs_of_a_full_flow_hold_no_secret(
    token_app_factory: AppFactory,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    json_logs: bool,
) -> None:
    # no refresh-retry grace: the second use of a rotated refresh token is reuse at once
    async with token_app_factory(
        log_level="DEBUG", log_json=json_logs, redis_url=redis_url, refresh_reuse_grace=0
    ) as env:
        secrets = await _flow(env)
        keys = [k.decode() async for k in env.services.redis.scan_iter(match="*")]  # type: ignore[union-attr]
        database_url = env.settings.database_url
    logs = capsys.readouterr()
    text = logs.out + logs.err
    # the flow did log what an auditor needs (so this test cannot pass on silence)
    for event in (
        "auth.token.created",
        "auth.login.failed",
        "auth.refresh.reuse_detected",
        "auth.token.revoked",
        "http.request",
    ):
        assert event in text, event
    if json_logs:
        created = [
            orjson.loads(line)
            for line in logs.out.splitlines()
            if line.startswith("{") and '"auth.token.created"' in line
        ]
        fields = {"user_id", "token_type", "scopes", "client_id", "ip"}
        assert created and all(fields <= set(event) for event in created)
    assert _leaks(text, secrets) == []
    assert _leaks("\n".join(keys), secrets) == []
    db = Database(database_url)
    try:
        async with db.sessions() as s:
            stored = list((await s.scalars(select(RefreshToken.token_hash))).all())
    finally:
        await db.close()
    assert stored and _leaks("\n".join(stored), secrets) == []
