"""Signing keys: rotation without breaking live tokens, JWKS contents, algorithms, key files,
encryption at rest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from app.main import create_app
from app.store.database import Database
from app.store.models import SigningKey
from app.token_services import key_store
from app.tokens import jose
from app.tokens import keys as signing_keys
from app.tokens.models import StoredKey
from tests.support.server import run_cli
from tests.support.tokens import AppFactory, TokenApp, claims_of, header_of
from tests.support.waiting import wait_for


async def _kid_after_rotation(env: TokenApp, old: str) -> str:
    kid = old

    async def rotated() -> bool:
        nonlocal kid
        kid = str(header_of((await env.login("alice"))["access_token"])["kid"])
        return kid != old

    await wait_for(rotated, timeout=10, interval=0.1, message="the new key was never picked up")
    return kid


async def test_rotation_keeps_old_tokens_valid(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, key_reload_interval=0.2) as env:
        before = (await env.login("alice"))["access_token"]
        old_kid = header_of(before)["kid"]
        db = Database(database_url)
        try:
            new = await signing_keys.rotate(key_store(env.settings, db), alg="RS256", password=None)
        finally:
            await db.close()
        assert await _kid_after_rotation(env, old_kid) == new.kid
        jwks = (await env.http.get("/.well-known/jwks.json")).json()
        assert [k["kid"] for k in jwks["keys"]] == [new.kid, old_kid]
        for key in jwks["keys"]:
            assert key["use"] == "sig" and key["alg"] == "RS256" and key["kty"] == "RSA"
            assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # public parts only
        assert (await env.validate(before))["valid"] is True


async def test_requests_never_wait_for_a_periodic_key_reload(
    token_app_factory: AppFactory,
) -> None:
    """A due reload happens in the background; requests keep the keys they have meanwhile."""
    async with token_app_factory(key_reload_interval=3600) as env:
        ring = env.tokens.keys
        for task in env.tokens._tasks:  # only requests may cause a reload in this test
            if task.get_name() == "key-refresh":
                task.cancel()
        reloads = 0
        load = ring.store.load

        async def counted_load() -> list[StoredKey]:
            nonlocal reloads
            reloads += 1
            return await load()

        ring.store.load = counted_load  # type: ignore[method-assign]
        ring._loaded_at -= 7200  # long overdue: before, every request reloaded
        access = (await env.login("alice"))["access_token"]
        for _ in range(5):
            assert (await env.validate(access))["valid"]
        assert reloads == 0
        known = header_of(access)["kid"]
        # many requests meeting the same unseen kid at once cause one reload, not one each
        claims = claims_of(access)
        db = Database(env.settings.database_url)
        try:
            new = await signing_keys.rotate(key_store(env.settings, db), alg="RS256", password=None)
        finally:
            await db.close()
        private = signing_keys.open_private_key(new, password=None)
        token = jose.sign(claims, key=private, kid=new.kid, alg="RS256")
        results = await asyncio.gather(*(ring.verification_key(new.kid) for _ in range(20)))
        assert all(r is not None for r in results) and reloads == 1
        assert (await env.validate(token))["valid"] is True and known != new.kid


async def test_unknown_kid_triggers_a_reload(token_app_factory: AppFactory) -> None:
    async with token_app_factory(key_reload_interval=3600) as env:
        claims = claims_of((await env.login("alice"))["access_token"])
        db = Database(env.settings.database_url)
        try:
            store = key_store(env.settings, db)
            new = await signing_keys.rotate(store, alg="RS256", password=None)
        finally:
            await db.close()
        # another instance signs with the key this one has not loaded yet
        private = signing_keys.open_private_key(new, password=None)
        token = jose.sign(claims, key=private, kid=new.kid, alg="RS256")
        assert (await env.validate(token))["valid"] is True


async def test_previous_key_leaves_jwks_after_its_tokens_expired(
    token_app_factory: AppFactory,
) -> None:
    async with token_app_factory(key_reload_interval=0.1) as env:
        old = (await env.login("alice"))["access_token"]
        db = Database(env.settings.database_url)
        try:
            await signing_keys.rotate(key_store(env.settings, db), alg="RS256", password=None)
            async with db.transaction() as s:
                await s.execute(
                    update(SigningKey)
                    .where(SigningKey.kid == header_of(old)["kid"])
                    .values(retired_at=datetime.now(UTC) - timedelta(hours=2))
                )
        finally:
            await db.close()

        async def published() -> list[str]:
            keys = (await env.http.get("/.well-known/jwks.json")).json()["keys"]
            return [str(k["kid"]) for k in keys]

        async def old_key_gone() -> bool:
            return header_of(old)["kid"] not in await published()

        await wait_for(old_key_gone, timeout=10)
        assert len(await published()) == 1
        result = await env.validate(old)
        assert result["error"]["code"] == "AUTH_004"


@pytest.mark.parametrize(("alg", "kty"), [("ES256", "EC"), ("EdDSA", "OKP")])
async def test_other_algorithms(token_app_factory: AppFactory, alg: str, kty: str) -> None:
    async with token_app_factory(signing_alg=alg) as env:
        token = (await env.login("alice"))["access_token"]
        assert header_of(token)["alg"] == alg
        assert (await env.validate(token))["valid"] is True
        jwks = (await env.http.get("/.well-known/jwks.json")).json()
        assert jwks["keys"][0]["kty"] == kty and jwks["keys"][0]["alg"] == alg
        meta = (await env.http.get("/.well-known/oauth-authorization-server")).json()
        assert meta["access_token_signing_alg_values_supported"] == [alg]


async def test_changing_the_algorithm_rotates_at_start(token_app_factory: AppFactory) -> None:
    async with token_app_factory() as env:
        rs = (await env.login("alice"))["access_token"]
        settings = env.settings
    es_settings = settings.model_copy(update={"signing_alg": "ES256"})
    app = create_app(es_settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        signer = await services.tokens.keys.signer()
        assert signer.alg == "ES256"
        assert header_of(rs)["kid"] in services.tokens.keys.published_kids
        claims = await services.tokens.service.validator.validate(rs)
        assert claims.subject == "alice"


async def test_keys_in_a_directory(token_app_factory: AppFactory, tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    async with token_app_factory(key_dir=key_dir) as env:
        token = (await env.login("alice"))["access_token"]
        kid = header_of(token)["kid"]
        pem = key_dir / f"{kid}.pem"
        assert pem.stat().st_mode & 0o777 == 0o600
        assert (key_dir / f"{kid}.json").is_file()
        db = Database(env.settings.database_url)
        try:
            async with db.sessions() as s:
                assert (await s.scalars(select(SigningKey))).all() == []
        finally:
            await db.close()
        settings = env.settings
    app = create_app(settings)  # a restart keeps using the same key
    async with app.router.lifespan_context(app):
        assert (await app.state.services.tokens.keys.signer()).kid == kid


async def test_private_keys_encrypted_at_rest(
    token_app_factory: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with token_app_factory(encryption_key="correct-encryption-key") as env:
        token = (await env.login("alice"))["access_token"]
        settings = env.settings
    db = Database(settings.database_url)
    try:
        async with db.sessions() as s:
            row = await s.scalar(select(SigningKey))
    finally:
        await db.close()
    assert row is not None and row.private_key.startswith("-----BEGIN OMS-AUTH WRAPPED PRIVATE")
    same = create_app(settings)
    async with same.router.lifespan_context(same):
        assert (await same.state.services.tokens.keys.signer()).kid == header_of(token)["kid"]
    for wrong, message in (
        ("wrong-encryption-key", "cannot be opened"),
        (None, "is encrypted: set OMS_AUTH_ENCRYPTION_KEY"),
    ):
        key = SecretStr(wrong) if wrong else None
        app = create_app(settings.model_copy(update={"encryption_key": key}))
        capsys.readouterr()
        with pytest.raises(signing_keys.KeyDecryptionError, match=message):
            async with app.router.lifespan_context(app):
                pass
        failed = [line for line in capsys.readouterr().out.splitlines() if "start_failed" in line]
        assert len(failed) == 1 and message in failed[0]  # the operator is told why
    # `oms-auth serve` checks the key before it starts the server: one line, no traceback.
    cli_env = {
        "OMS_AUTH_DATABASE_URL": settings.database_url,
        "OMS_AUTH_POLICY_DIR": str(settings.policy_dir),
        "OMS_AUTH_ENCRYPTION_KEY": "wrong-encryption-key",
        "OMS_AUTH_PORT": "1",  # never bound: the check fails first
    }
    result = await asyncio.to_thread(run_cli, "serve", env=cli_env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"oms-auth: signing key {header_of(token)['kid']} cannot be opened with "
        "OMS_AUTH_ENCRYPTION_KEY"
    ]
