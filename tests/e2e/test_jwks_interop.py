"""Interop: a real `oms-auth serve` process issues tokens that an independent JOSE library
(PyJWT with its JWKS client) verifies against the live `/.well-known/jwks.json`, before and
after `oms-auth keys rotate`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.conftest import POLICY_DIR, SettingsFactory
from tests.support.redis_server import free_port
from tests.support.tokens import add_user

pytestmark = pytest.mark.e2e

PASSWORD = "interop password"
OAS = Path(sys.executable).parent / "oms-auth"


class Server:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.base = f"http://127.0.0.1:{port}"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(OAS), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

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
) -> Iterator[Server]:
    port = free_port()
    settings = make_settings()  # a migrated SQLite copy
    asyncio.run(add_user(settings, "olga", roles=["developer"], password=PASSWORD))
    env = {
        **os.environ,
        "OMS_AUTH_DATABASE_URL": settings.database_url,
        "OMS_AUTH_POLICY_DIR": str(POLICY_DIR),
        "OMS_AUTH_PORT": str(port),
        "OMS_AUTH_ISSUER": f"http://127.0.0.1:{port}",
        "OMS_AUTH_SIGNING_ALG": request.param,
        "OMS_AUTH_KEY_RELOAD_INTERVAL": "0.2",
        "OMS_AUTH_ARGON2_TIME_COST": "1",
        "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
        "OMS_AUTH_ARGON2_PARALLELISM": "1",
        "OMS_AUTH_LOG_LEVEL": "WARNING",
        "OMS_AUTH_SERVICE_NAME": f"oms-auth-e2e-{port}",
    }
    env.pop("OMS_AUTH_REDIS_URL", None)
    srv = Server(env, port)
    log_path = tmp_path / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([str(OAS), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{srv.base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        srv.alg = request.param  # type: ignore[attr-defined]
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def verify_with_pyjwt(srv: Server, token: str, client: jwt.PyJWKClient) -> dict[str, object]:
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["alg"] == srv.alg  # type: ignore[attr-defined]
    key = client.get_signing_key_from_jwt(token)
    claims: dict[str, object] = jwt.decode(
        token,
        key.key,
        algorithms=[srv.alg],  # type: ignore[attr-defined]
        audience="oms-api",
        issuer=srv.base,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    return claims


def test_pyjwt_verifies_tokens_before_and_after_rotation(server: Server) -> None:
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
    deadline = time.monotonic() + 10
    after = server.login()
    while jwt.get_unverified_header(after)["kid"] != new_kid:
        assert time.monotonic() < deadline, "the server never switched to the rotated key"
        time.sleep(0.1)
        after = server.login()
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
