"""Interop: a real `oms-auth serve` process issues tokens that an independent JOSE library
(PyJWT with its JWKS client) verifies against the live `/.well-known/jwks.json`, before and
after `oms-auth keys rotate`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from tests.conftest import POLICY_DIR, SettingsFactory
from tests.support.server import Server, free_port, serve
from tests.support.tokens import add_user
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

PASSWORD = "interop password"


@dataclass
class Interop:
    server: Server
    alg: str

    @property
    def base(self) -> str:
        return self.server.url

    def cli(self, *args: str) -> str:
        return self.server.cli(*args)

    def login(self) -> str:
        r = httpx.post(
            f"{self.base}/api/v2/auth/login",
            json={"username": "olga", "password": PASSWORD},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token


@pytest.fixture(params=["RS256", "ES256", "EdDSA"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, make_settings: SettingsFactory
) -> Iterator[Interop]:
    port = free_port()
    settings = make_settings()  # a migrated SQLite copy
    asyncio.run(add_user(settings, "olga", roles=["developer"], password=PASSWORD))
    env = {
        "OMS_AUTH_DATABASE_URL": settings.database_url,
        "OMS_AUTH_POLICY_DIR": str(POLICY_DIR),
        "OMS_AUTH_ISSUER": f"http://127.0.0.1:{port}",
        "OMS_AUTH_SIGNING_ALG": request.param,
        "OMS_AUTH_KEY_RELOAD_INTERVAL": "0.2",
        "OMS_AUTH_ARGON2_TIME_COST": "1",
        "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
        "OMS_AUTH_ARGON2_PARALLELISM": "1",
        "OMS_AUTH_LOG_LEVEL": "WARNING",
        "OMS_AUTH_SERVICE_NAME": f"oms-auth-e2e-{port}",
    }
    with serve(env, log_dir=tmp_path, port=port, migrate=False) as srv:
        yield Interop(srv, request.param)


def verify_with_pyjwt(srv: Interop, token: str, client: jwt.PyJWKClient) -> dict[str, object]:
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["alg"] == srv.alg
    key = client.get_signing_key_from_jwt(token)
    claims: dict[str, object] = jwt.decode(
        token,
        key.key,
        algorithms=[srv.alg],
        audience="oms-api",
        issuer=srv.base,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    return claims


def test_pyjwt_verifies_tokens_before_and_after_rotation(server: Interop) -> None:
    jwks_url = f"{server.base}/.well-known/jwks.json"
    # PyJWT refetches the JWKS when it meets an unknown kid, at most once per cooldown (30 s
    # by default, against hammering); the test cannot wait that long between its fetches.
    client = jwt.PyJWKClient(jwks_url, cache_keys=True, cooldown_duration=0)
    before = server.login()
    claims = verify_with_pyjwt(server, before, client)
    assert claims["sub"] == "olga" and "api:schemas:write" in str(claims["scope"]).split()

    old_kid = jwt.get_unverified_header(before)["kid"]
    out = server.cli("keys", "rotate")
    new_kid = out.split()[3]
    after = server.login()

    def switched() -> bool:
        nonlocal after
        if jwt.get_unverified_header(after)["kid"] == new_kid:
            return True
        after = server.login()
        return False

    wait_until(
        switched,
        timeout=10,
        interval=0.1,
        message="the server never switched to the rotated key",
    )
    assert new_kid != old_kid
    # the same client meets an unknown kid, refetches the JWKS and verifies
    assert verify_with_pyjwt(server, after, client)["sub"] == "olga"
    # a fresh client: the previous key is still published, so older tokens verify
    fresh = jwt.PyJWKClient(jwks_url, cache_keys=False)
    assert verify_with_pyjwt(server, before, fresh)["sub"] == "olga"
    kids = [k["kid"] for k in httpx.get(jwks_url, timeout=5).json()["keys"]]
    assert kids == [new_kid, old_kid]

    head, payload, sig = after.split(".")
    forged = f"{head}.{payload}.{sig[:-4]}AAAA"
    with pytest.raises(jwt.InvalidSignatureError):
        verify_with_pyjwt(server, forged, fresh)
