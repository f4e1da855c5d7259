"""The SDK's token calls, local verification and FastAPI guard, against a real server.

(No `from __future__ import annotations`: FastAPI must see the route annotations, which
name dependencies local to a test.)
"""

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from oms_auth import (
    AccessToken,
    AuthClient,
    InvalidCredentials,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    TokenSet,
    TokenVerifier,
)
from oms_auth.fastapi import Authorizer
from tests.conftest import POLICY_DIR
from tests.support.server import Server, free_port, serve
from tests.support.tokens import PASSWORD
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("sdk-tokens")
    port = free_port()
    env = {
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{workdir}/sdk.db",
        "OMS_AUTH_POLICY_DIR": str(POLICY_DIR),
        "OMS_AUTH_ISSUER": f"http://127.0.0.1:{port}",
        "OMS_AUTH_KEY_RELOAD_INTERVAL": "0.2",
        "OMS_AUTH_ARGON2_TIME_COST": "1",
        "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
        "OMS_AUTH_ARGON2_PARALLELISM": "1",
        "OMS_AUTH_LOG_LEVEL": "WARNING",
    }
    with serve(env, log_dir=workdir, port=port) as srv:
        srv.cli(
            "users", "create", "alice", "--role", "developer", "--password-stdin", stdin=PASSWORD
        )
        srv.cli("users", "create", "bob", "--role", "viewer", "--password-stdin", stdin=PASSWORD)
        yield srv


@pytest.fixture
async def client(server: Server) -> AsyncIterator[AuthClient]:
    async with AuthClient(base_url=server.url) as c:
        yield c


async def _login(client: AuthClient, user: str) -> TokenSet:
    # a role given by the CLI reaches the running server through its policy poll
    logins: list[TokenSet] = []

    async def scoped() -> bool:
        logins.append(await client.login(user, PASSWORD))
        return bool(logins[-1].scope)

    await wait_for(scoped, timeout=5, interval=0.1, message=f"{user}'s token never had a scope")
    return logins[-1]


async def test_login_validate_refresh_logout(client: AuthClient) -> None:
    tokens = await _login(client, "alice")
    assert "api:schemas:write" in (tokens.scope or "")
    assert "eyJ" not in repr(tokens)
    verdict = await client.validate_token(tokens.access_token)
    assert verdict and verdict.claims["sub"] == "alice"
    me = await client.me(tokens.access_token)
    assert me["subject"] == "alice" and "developer" in me["roles"]
    check = await client.check_with_token(tokens.access_token, "api:schemas", "write")
    assert check["allowed"] is True and check["decided_by"] == "token_scope"
    assert tokens.refresh_token is not None
    renewed = await client.refresh(tokens.refresh_token)
    assert renewed.access_token != tokens.access_token
    both = await client.validate_tokens([renewed.access_token, "not-a-token"])
    assert [bool(v) for v in both] == [True, False] and both[1].code == "AUTH_004"
    await client.logout(renewed.access_token, refresh_token=renewed.refresh_token)
    revoked = await client.validate_token(renewed.access_token)
    assert not revoked and revoked.code == "AUTH_005"
    assert renewed.refresh_token is not None
    with pytest.raises(TokenRevoked):
        await client.refresh(renewed.refresh_token)
    with pytest.raises(InvalidCredentials):
        await client.login("alice", "wrong password")


async def test_v1_token_has_no_scope(client: AuthClient) -> None:
    tokens = await client.login("bob", PASSWORD, version=1)
    assert tokens.scope is None
    assert "scope" not in (await client.validate_token(tokens.access_token)).claims


async def test_local_verification_with_jwks_and_rotation(
    client: AuthClient, server: Server
) -> None:
    verifier = TokenVerifier(issuer=server.url, audience="oms-api")
    tokens = await _login(client, "alice")
    token: AccessToken = await verifier.verify(tokens.access_token)
    assert token.subject == "alice" and token.allows("api:schemas", "write") is True
    assert token.allows("api:policies", "write") is None  # the scope cannot say: ask
    head, body, sig = tokens.access_token.split(".")
    with pytest.raises(TokenInvalid):
        await verifier.verify(f"{head}.{body}.{sig[::-1]}")
    with pytest.raises(TokenInvalid):
        await TokenVerifier(issuer=server.url, audience="other-api").verify(tokens.access_token)
    # a key rotation: the verifier fetches the new key when it meets its kid
    server.cli("keys", "rotate")
    fresh = tokens

    async def signed_with_new_key() -> bool:
        nonlocal fresh
        fresh = await client.login("alice", PASSWORD)
        return fresh.access_token.split(".")[0] != head

    await wait_for(
        signed_with_new_key,
        timeout=5,
        interval=0.1,
        message="the server never signed with the rotated key",
    )
    verifier.refresh_cooldown = 0
    assert (await verifier.verify(fresh.access_token)).subject == "alice"
    assert (
        await verifier.verify(tokens.access_token)
    ).subject == "alice"  # old key still published


async def test_expired_token_is_refused_locally(server: Server) -> None:
    verifier = TokenVerifier(issuer=server.url, audience="oms-api", leeway=0)
    async with AuthClient(base_url=server.url) as c:
        tokens = await c.login("bob", PASSWORD)
    verifier_claims = (await verifier.verify(tokens.access_token)).claims
    fake_now = verifier_claims["exp"] + 1
    real_time = time.time
    try:
        time.time = lambda: fake_now
        with pytest.raises(TokenExpired):
            await verifier.verify(tokens.access_token)
    finally:
        time.time = real_time


async def test_fastapi_guard(server: Server, client: AuthClient) -> None:
    verifier = TokenVerifier(issuer=server.url, audience="oms-api")
    local_only = Authorizer(verifier)
    with_service = Authorizer(verifier, client=client)
    app = FastAPI()

    @app.get("/schemas")
    async def write_schemas(
        token: Annotated[AccessToken, Depends(local_only.require("api:schemas", "write"))],
    ) -> dict[str, str]:
        return {"sub": token.subject}

    @app.get("/main")
    async def delete_main(
        token: Annotated[AccessToken, Depends(with_service.require("api:branches:main", "delete"))],
    ) -> dict[str, str]:
        return {"sub": token.subject}

    @app.get("/feature")
    async def delete_feature(
        token: Annotated[
            AccessToken, Depends(with_service.require("api:branches:feature-1", "delete"))
        ],
    ) -> dict[str, str]:
        return {"sub": token.subject}

    alice = (await _login(client, "alice")).access_token
    bob = (await _login(client, "bob")).access_token
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://rs"
    ) as rs:
        assert (await rs.get("/schemas")).status_code == 401
        ok = await rs.get("/schemas", headers={"Authorization": f"Bearer {alice}"})
        assert ok.status_code == 200 and ok.json() == {"sub": "alice"}
        no = await rs.get("/schemas", headers={"Authorization": f"Bearer {bob}"})
        assert no.status_code == 403 and no.json()["detail"]["code"] == "AUTH_003"
        # a pattern scope (api:branches:*:delete) cannot decide: the service does, deny included
        assert (
            await rs.get("/feature", headers={"Authorization": f"Bearer {alice}"})
        ).status_code == 200
        assert (
            await rs.get("/main", headers={"Authorization": f"Bearer {alice}"})
        ).status_code == 403


def test_sync_client_reads_tokens_too(server: Server, tmp_path: Path) -> None:
    from oms_auth import SyncAuthClient

    with SyncAuthClient(base_url=server.url) as c:
        tokens = c.login("bob", PASSWORD)
        assert c.validate_token(tokens.access_token).claims["sub"] == "bob"
