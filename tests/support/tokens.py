"""Fixtures and helpers for the token service tests: a running app with users and clients.

Users and clients are created through the same repositories the CLI uses; role assignments
are `g` rules in the database, picked up by reloading the policy (as a running instance does
on its next reload).
"""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.factories import password_hasher
from app.security.client_secrets import hash_client_secret, new_client_secret
from app.security.passwords import PasswordHasher, Verification
from app.services import Services
from app.store.clients import ClientRepository
from app.store.database import Database
from app.store.users import UserRepository
from app.token_services import TokenComponents
from tests.support.apps import serve
from tests.support.waiting import wait_for

PASSWORD = "correct horse battery"  # every test user's password unless a test says otherwise


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def header_of(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    return dict(orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


def bearer(token: str, fingerprint: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if fingerprint is not None:
        headers["X-Device-Fingerprint"] = fingerprint
    return headers


async def add_user(
    settings: Settings,
    username: str,
    *,
    roles: Sequence[str] = (),
    admin: bool = False,
    password: str = PASSWORD,
) -> str:
    """Create a user in the settings' database; returns its id."""
    db = Database(settings.database_url)
    hasher = password_hasher(settings)
    try:
        user = await UserRepository(db).create(
            username=username,
            password_hash=await hasher.hash(password),
            is_admin=admin,
            roles=roles,
        )
        assert user is not None
        return user.id
    finally:
        hasher.close()
        await db.close()


async def add_client(
    settings: Settings,
    client_id: str,
    *,
    scopes: Sequence[str] = ("*",),
    grants: Sequence[str] = ("password", "client_credentials", "refresh_token"),
    audience: str | None = None,
) -> str:
    """Register an OAuth client; returns its secret."""
    secret = new_client_secret()
    db = Database(settings.database_url)
    try:
        await ClientRepository(db).create(
            client_id=client_id,
            secret_hash=hash_client_secret(secret),
            grant_types=grants,
            scopes=scopes,
            audience=audience,
        )
    finally:
        await db.close()
    return secret


async def until_warmed(hasher: PasswordHasher) -> None:
    """Wait for the start-up's warm-up hash: until it is made it holds a slot of the pool, so
    a test that fills the pool itself would otherwise race it."""

    async def warmed() -> bool:
        return hasher.warmed

    await wait_for(warmed, timeout=30)


def hold_verifications(hasher: PasswordHasher, gate: threading.Event) -> None:
    """Make `hasher`'s verifications wait for `gate` (at most 30 s) before they run, so a test
    controls how long a real hashing slot is held."""
    verify = hasher.verify_blocking

    def gated(stored_hash: str | None, password: str) -> Verification:
        gate.wait(30)
        return verify(stored_hash, password)

    hasher.verify_blocking = gated  # type: ignore[method-assign]


@dataclass
class TokenApp:
    settings: Settings
    app: FastAPI
    http: httpx.AsyncClient
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def tokens(self) -> TokenComponents:
        assert self.services.tokens is not None
        return self.services.tokens

    async def login(
        self,
        username: str = "alice",
        password: str = PASSWORD,
        *,
        version: str = "v2",
        scope: str | None = None,
        fingerprint: str | None = None,
        expect: int = 200,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"username": username, "password": password}
        if scope is not None:
            body["scope"] = scope
        headers = {"X-Device-Fingerprint": fingerprint} if fingerprint else {}
        r = await self.http.post(f"/api/{version}/auth/login", json=body, headers=headers)
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def validate(self, token: str, **extra: Any) -> dict[str, Any]:
        r = await self.http.post("/api/v1/tokens/validate", json={"token": token, **extra})
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def oauth(
        self, path: str, client_id: str, data: dict[str, str], **kwargs: Any
    ) -> httpx.Response:
        auth = (client_id, self.secrets[client_id])
        return await self.http.post(f"/oauth/{path}", data=data, auth=auth, **kwargs)

    async def reload_policy(self) -> None:
        await self.services.engine.load(trigger="api")


AppFactory = Callable[..., contextlib.AbstractAsyncContextManager[TokenApp]]

DEFAULT_USERS = {"alice": ["developer"], "bob": ["viewer"], "carol": ["admin"]}


@pytest.fixture
def token_app_factory(make_settings: Callable[..., Settings]) -> AppFactory:
    """`async with token_app_factory(**settings) as env:` a running app whose database has
    users alice (developer), bob (viewer), carol (admin, is_admin) and client `web`."""

    @contextlib.asynccontextmanager
    async def factory(
        *, users: dict[str, list[str]] | None = None, **overrides: Any
    ) -> AsyncIterator[TokenApp]:
        settings = make_settings(**overrides)
        for name, roles in (DEFAULT_USERS if users is None else users).items():
            await add_user(settings, name, roles=roles, admin=name == "carol")
        secrets = {"web": await add_client(settings, "web")}
        async with serve(settings) as (app, c):
            yield TokenApp(settings, app, c, secrets)

    return factory


@pytest.fixture
async def token_app(token_app_factory: AppFactory) -> AsyncIterator[TokenApp]:
    async with token_app_factory() as env:
        yield env
