"""Service callers: `AuthClient(client_id=..., client_secret=...)` and `AuthClient(api_key=...)`
against a real server in token mode, and the FastAPI `Authorizer` refusing revoked tokens.

(No `from __future__ import annotations`: FastAPI must see the route annotations.)
"""

import shutil
from collections.abc import Iterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from oms_auth import (
    AccessToken,
    AuthClient,
    InvalidCredentials,
    SyncAuthClient,
    TokenInvalid,
    TokenVerifier,
)
from oms_auth.fastapi import Authorizer
from tests.conftest import POLICY_DIR
from tests.support.server import Server, free_port, serve
from tests.support.tokens import PASSWORD
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

API_KEY = "service-callers-admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    workdir = tmp_path_factory.mktemp("sdk-callers")
    port = free_port()
    # In token mode a caller asking about others needs `authz:check`, which the policy grants
    # to `decision-client`: the shipped policy, with the service client made one.
    policy_dir = workdir / "policies"
    shutil.copytree(POLICY_DIR, policy_dir, ignore=shutil.ignore_patterns("examples", "tests"))
    with (policy_dir / "policy.csv").open("a") as f:
        f.write("\ng, client:ci-pipeline, decision-client\n")
    env = {
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{workdir}/sdk.db",
        "OMS_AUTH_POLICY_DIR": str(policy_dir),
        "OMS_AUTH_ISSUER": f"http://127.0.0.1:{port}",
        "OMS_AUTH_DECISION_AUTH": "token",
        "OMS_AUTH_ADMIN_API_KEY": API_KEY,
        "OMS_AUTH_ARGON2_TIME_COST": "1",
        "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
        "OMS_AUTH_ARGON2_PARALLELISM": "1",
        "OMS_AUTH_LOG_LEVEL": "WARNING",
    }
    with serve(env, log_dir=workdir, port=port, timeout=120) as srv:
        srv.cli(
            "users", "create", "alice", "--role", "developer", "--password-stdin", stdin=PASSWORD
        )
        out = srv.cli("clients", "create", "ci-pipeline", "--scope", "api:*:read authz:check")
        secret = out.split("client_secret: ")[1].split()[0]
        yield srv, secret


async def test_client_credentials_are_fetched_cached_and_renewed(
    server: tuple[Server, str],
) -> None:
    srv, secret = server
    async with AuthClient(base_url=srv.url) as anonymous:
        with pytest.raises(InvalidCredentials):
            await anonymous.check("alice", "api:schemas", "write")  # token mode
    async with AuthClient(
        base_url=srv.url, client_id="ci-pipeline", client_secret=secret
    ) as service:
        assert await service.check("alice", "api:schemas", "write")
        first = await service.service_token()
        assert first is not None and await service.service_token() == first  # cached
        assert service._core.service is not None
        service._core.service.renew_at = 0.0  # due: the next call renews it
        assert await service.check("alice", "api:schemas", "read")
        renewed = await service.service_token()
        assert renewed is not None and renewed != first
        # a cached token revoked behind the client's back: one fresh token, one retry
        async with httpx.AsyncClient(base_url=srv.url) as http:
            revoked = await http.post(
                "/oauth/revoke", data={"token": renewed}, auth=("ci-pipeline", secret)
            )
            assert revoked.status_code == 200
        assert await service.check("alice", "api:schemas", "write")
        assert await service.service_token() not in (first, renewed)


async def test_wrong_secret_names_the_client_and_the_endpoint(server: tuple[Server, str]) -> None:
    srv, _ = server
    async with AuthClient(base_url=srv.url, client_id="ci-pipeline", client_secret="nope") as c:
        with pytest.raises(InvalidCredentials) as info:
            await c.check("alice", "api:schemas", "write")
    message = str(info.value)
    assert "'ci-pipeline'" in message and f"{srv.url}/oauth/token" in message


def test_api_key_and_sync_client(server: tuple[Server, str]) -> None:
    srv, secret = server
    with SyncAuthClient(base_url=srv.url, api_key=API_KEY) as keyed:
        assert keyed.check("alice", "api:schemas", "write").allowed
    with SyncAuthClient(base_url=srv.url, client_id="ci-pipeline", client_secret=secret) as c:
        assert not c.check("alice", "api:branches:main", "delete").allowed
        assert c.service_token() == c.service_token()


def test_credentials_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="client_id was given without client_secret"):
        AuthClient(client_id="x")
    with pytest.raises(ValueError, match="got client_id and api_key"):
        SyncAuthClient(client_id="x", client_secret="y", api_key="z")


async def test_issuer_mismatch_names_expected_and_found(server: tuple[Server, str]) -> None:
    srv, _ = server
    async with AuthClient(base_url=srv.url) as c:
        token = (await c.login("alice", PASSWORD)).access_token
    wrong = srv.url.replace("127.0.0.1", "localhost")
    verifier = TokenVerifier(
        issuer=wrong, audience="oms-api", jwks_url=f"{srv.url}/.well-known/jwks.json"
    )
    with pytest.raises(TokenInvalid) as info:
        await verifier.verify(token)
    assert f"issued by '{srv.url}'" in info.value.message
    assert f"expects '{wrong}'" in info.value.message
    assert info.value.details == {"expected": wrong, "found": srv.url}
    other = TokenVerifier(issuer=srv.url, audience="billing")
    with pytest.raises(
        TokenInvalid, match="audience 'oms-api', but this verifier expects 'billing'"
    ):
        await other.verify(token)


async def test_authorizer_refuses_a_token_after_logout(server: tuple[Server, str]) -> None:
    srv, secret = server
    verifier = TokenVerifier(issuer=srv.url, audience="oms-api")
    async with (
        AuthClient(base_url=srv.url, client_id="ci-pipeline", client_secret=secret) as service,
        AuthClient(base_url=srv.url) as users,
    ):
        authz = Authorizer(verifier, client=service, revocation_ttl=0.5)
        app = FastAPI()

        @app.get("/branches")
        async def delete_branch(
            token: Annotated[
                AccessToken, Depends(authz.require("api:branches:feature-1", "delete"))
            ],
        ) -> dict[str, str]:
            return {"sub": token.subject}

        tokens = await users.login("alice", PASSWORD)
        bearer = {"Authorization": f"Bearer {tokens.access_token}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rs"
        ) as rs:
            # token mode: the pattern scope cannot decide, the service does (with the
            # Authorizer's own client credentials)
            ok = await rs.get("/branches", headers=bearer)
            assert ok.status_code == 200, ok.text
            await users.logout(tokens.access_token)
            refused = ok

            async def not_allowed() -> bool:
                nonlocal refused
                refused = await rs.get("/branches", headers=bearer)
                return refused.status_code != 200

            await wait_for(
                not_allowed,
                timeout=30,
                interval=0.1,
                message="the Authorizer kept accepting the revoked token",
            )
            assert refused.status_code == 401, refused.text
            assert refused.json()["detail"]["code"] == "AUTH_005"


async def test_authorizer_without_client_checks_locally_only(server: tuple[Server, str]) -> None:
    srv, _ = server
    verifier = TokenVerifier(issuer=srv.url, audience="oms-api")
    authz = Authorizer(verifier)
    app = FastAPI()

    @app.get("/schemas")
    async def write(
        token: Annotated[AccessToken, Depends(authz.require("api:schemas", "write"))],
    ) -> dict[str, str]:
        return {"sub": token.subject}

    async with AuthClient(base_url=srv.url) as users:
        tokens = await users.login("alice", PASSWORD)

        async def role_in_scope() -> bool:
            nonlocal tokens
            if "api:schemas:write" in (tokens.scope or "").split():
                return True
            tokens = await users.login("alice", PASSWORD)
            return False

        # the CLI's role reaches the server through its policy poll
        await wait_for(
            role_in_scope,
            timeout=10,
            interval=0.1,
            message="alice's token never carried api:schemas:write",
        )
        bearer = {"Authorization": f"Bearer {tokens.access_token}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rs"
        ) as rs:
            assert (await rs.get("/schemas", headers=bearer)).status_code == 200
            await users.logout(tokens.access_token)
            # no client: a revocation is not seen before the token expires
            assert (await rs.get("/schemas", headers=bearer)).status_code == 200
