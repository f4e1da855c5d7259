"""`oms-auth users|clients|keys` against a real database (both backends where it matters)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.store.database import Database
from app.store.models import CasbinRule, OAuthClient, PolicyState, User
from tests.conftest import SettingsFactory
from tests.support.tokens import AppFactory, claims_of
from tests.support.waiting import wait_for


def _env(settings: Settings) -> dict[str, str]:
    return {
        "OMS_AUTH_DATABASE_URL": settings.database_url,
        "OMS_AUTH_POLICY_DIR": str(settings.policy_dir),
        "OMS_AUTH_SERVICE_NAME": settings.service_name,
        "OMS_AUTH_ARGON2_TIME_COST": "1",
        "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
        "OMS_AUTH_ARGON2_PARALLELISM": "1",
        "OMS_AUTH_LOG_LEVEL": "WARNING",
        **({"OMS_AUTH_REDIS_URL": settings.redis_url} if settings.redis_url else {}),
    }


def _run(settings: Settings, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=stdin, env=_env(settings))


def _query(settings: Settings, statement: Any) -> list[Any]:
    async def go() -> list[Any]:
        db = Database(settings.database_url)
        try:
            async with db.sessions() as s:
                return list((await s.execute(statement)).all())
        finally:
            await db.close()

    return asyncio.run(go())


def test_users_create_assigns_roles_in_one_transaction(
    make_settings: SettingsFactory, database_url: str
) -> None:
    settings = make_settings(database_url=database_url)
    revision = _query(settings, select(PolicyState.revision))[0][0]
    r = _run(
        settings,
        "users",
        "create",
        "erin",
        "--role",
        "developer",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert r.exit_code == 0, r.output
    assert "created user erin" in r.output
    assert _query(settings, select(CasbinRule.ptype, CasbinRule.v0, CasbinRule.v1)) == [
        ("g", "erin", "developer")
    ]
    assert _query(settings, select(PolicyState.revision))[0][0] == revision + 1
    (row,) = _query(settings, select(User.password_hash, User.is_admin))
    assert row[0].startswith("$argon2id$") and row[1] is False
    # a second user of the same name: nothing is written, not even the role or a revision
    again = _run(
        settings,
        "users",
        "create",
        "erin",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="another password\n",
    )
    assert again.exit_code == 2 and "already exists" in again.output
    assert len(_query(settings, select(CasbinRule.id))) == 1
    assert _query(settings, select(PolicyState.revision))[0][0] == revision + 1


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--role", "wizard", "--password-stdin"], "long enough pw\n", "RBAC_001"),
        (["--role", "viewer"], "long enough pw\n", "--password-stdin"),
        (["--password-stdin"], "short\n", "at least 8"),
    ],
)
def test_users_create_refusals(
    make_settings: SettingsFactory, args: list[str], stdin: str, message: str
) -> None:
    settings = make_settings()
    r = _run(settings, "users", "create", "frank", *args, stdin=stdin)
    assert r.exit_code == 2 and message in r.output
    assert _query(settings, select(User.id)) == []


@pytest.mark.parametrize(
    "name", ["a, b", "client:web", "has space", "", "x" * 151, "tab\there", "#comment"]
)
def test_names_that_would_not_survive_the_policy_store_are_refused(
    make_settings: SettingsFactory, name: str
) -> None:
    settings = make_settings()
    created = _run(
        settings,
        "users",
        "create",
        name,
        "--role",
        "viewer",
        "--password-stdin",
        stdin="pw-123456\n",
    )
    assert created.exit_code == 2 and "username" in created.output
    client = _run(settings, "clients", "create", name, "--scope", "api:schemas:read")
    assert client.exit_code == 2 and "client id" in client.output
    assert _query(settings, select(User.id)) == []
    assert _query(settings, select(OAuthClient.id)) == []
    assert _query(settings, select(CasbinRule.id)) == []


def test_users_list_and_disable(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    for name, extra in (("gina", ["--admin"]), ("hank", [])):
        assert (
            _run(
                settings,
                "users",
                "create",
                name,
                *extra,
                "--password-stdin",
                stdin="password-123\n",
            ).exit_code
            == 0
        )
    listed = _run(settings, "users", "list", "--json")
    rows = orjson.loads(listed.stdout)
    assert [(r["username"], r["is_admin"], r["disabled"]) for r in rows] == [
        ("gina", True, False),
        ("hank", False, False),
    ]
    assert _run(settings, "users", "disable", "hank").exit_code == 0
    assert "hank" in _run(settings, "users", "list").stdout
    assert orjson.loads(_run(settings, "users", "list", "--json").stdout)[1]["disabled"] is True
    missing = _run(settings, "users", "disable", "nobody")
    assert missing.exit_code == 1


def test_clients_create_prints_the_secret_once(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    r = _run(
        settings,
        "clients",
        "create",
        "reports",
        "--scope",
        "api:*:read",
        "--grant",
        "client_credentials",
        "--grant",
        "refresh_token",
    )
    assert r.exit_code == 0, r.output
    # the policy grants client:reports nothing: its tokens would carry "scope": ""
    assert "--scope is only an upper bound" in r.output
    assert "`g, client:reports, viewer`" in r.output
    ci = _run(settings, "clients", "create", "ci-pipeline", "--scope", "api:schemas:write")
    assert ci.exit_code == 0 and "tokens carry now: api:schemas:write" in ci.output
    assert "upper bound" not in ci.output
    secret = r.stdout.split("client_secret: ")[1].split()[0]
    (row,) = _query(
        settings,
        select(OAuthClient.secret_hash, OAuthClient.grant_types, OAuthClient.scope).where(
            OAuthClient.client_id == "reports"
        ),
    )
    assert secret not in row[0] and row[0].startswith("sha256$")
    assert row[1] == "client_credentials refresh_token" and row[2] == "api:*:read"
    listed = _run(settings, "clients", "list")
    assert "reports" in listed.stdout and secret not in listed.stdout
    bad = _run(settings, "clients", "create", "x", "--scope", "a", "--grant", "implicit")
    assert bad.exit_code == 2 and "unknown grant type" in bad.output
    dup = _run(settings, "clients", "create", "reports", "--scope", "a")
    assert dup.exit_code == 2 and "already exists" in dup.output
    assert _run(settings, "clients", "disable", "reports").exit_code == 0
    assert "disabled" in _run(settings, "clients", "list").stdout
    assert _run(settings, "clients", "disable", "ghost").exit_code == 1


def test_keys_rotate_and_list(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    first = _run(settings, "keys", "rotate")
    second = _run(settings, "keys", "rotate", "--alg", "ES256")
    assert first.exit_code == second.exit_code == 0
    listed = _run(settings, "keys", "list").stdout.splitlines()
    statuses = sorted(line.split("\t")[2] for line in listed)
    assert statuses == ["active", "previous"]
    assert any("\tES256\tactive" in line for line in listed)
    assert _run(settings, "keys", "rotate", "--alg", "HS256").exit_code == 2


async def test_running_instance_uses_cli_changes(token_app_factory: AppFactory) -> None:
    async with token_app_factory(users={}) as env:
        settings = env.settings
        r = await asyncio.to_thread(
            _run,
            settings,
            "users",
            "create",
            "ivy",
            "--role",
            "developer",
            "--password-stdin",
            stdin="ivy's password\n",
        )
        assert r.exit_code == 0
        await env.reload_policy()  # what the policy watcher does on the revision bump
        tokens = await env.login("ivy", "ivy's password")
        assert "api:schemas:write" in claims_of(tokens["access_token"])["scope"]
        disabled = await asyncio.to_thread(_run, settings, "users", "disable", "ivy")
        assert disabled.exit_code == 0
        result: dict[str, Any] = {}

        async def refused() -> bool:
            nonlocal result
            result = await env.validate(tokens["access_token"])
            return not result["valid"]

        # no Redis here: the instance learns it from the database on its next poll
        await wait_for(
            refused, timeout=5, interval=0.05, message="the disabled user's token stayed valid"
        )
        assert result["error"]["code"] == "AUTH_005"


async def test_cli_client_disable_reaches_a_running_instance_through_redis(
    token_app_factory: AppFactory, redis_url: str
) -> None:
    async with token_app_factory(redis_url=redis_url) as env:
        r = await env.oauth("token", "web", {"grant_type": "client_credentials"})
        token = r.json()["access_token"]
        assert (await env.validate(token))["valid"]
        disabled = await asyncio.to_thread(_run, env.settings, "clients", "disable", "web")
        assert disabled.exit_code == 0, disabled.output
        assert "warning" not in disabled.output  # Redis took the cut-off
        # no database poll to wait for: the cut-off is in Redis, and its announcement makes the
        # instance drop what it kept of recent lookups (OMS_AUTH_CALLER_CACHE_SECONDS)

        async def refused() -> bool:
            return not (await env.validate(token))["valid"]

        await wait_for(refused, timeout=20)
        result = await env.validate(token)
        assert result["error"]["code"] == "AUTH_005"
        assert result["error"]["details"] == {"reason": "stale"}


def test_identity_and_key_changes_are_audited(
    make_settings: SettingsFactory, database_url: str
) -> None:
    settings = make_settings(database_url=database_url)
    assert (
        _run(
            settings,
            "users",
            "create",
            "finn",
            "--role",
            "viewer",
            "--password-stdin",
            stdin="a long password\n",
        ).exit_code
        == 0
    )
    assert _run(settings, "users", "disable", "finn").exit_code == 0
    assert _run(settings, "clients", "create", "svc", "--scope", "api:schemas:read").exit_code == 0
    assert _run(settings, "clients", "disable", "svc").exit_code == 0
    assert _run(settings, "keys", "rotate").exit_code == 0
    # a refused change leaves no audit row
    assert _run(settings, "clients", "disable", "nobody").exit_code == 1

    from app.store.models import AuditEvent

    rows = _query(
        settings,
        select(
            AuditEvent.action,
            AuditEvent.target,
            AuditEvent.source,
            AuditEvent.actor,
            AuditEvent.after,
            AuditEvent.details,
        ).order_by(AuditEvent.id),
    )
    assert [(r[0], r[1].split(":")[0]) for r in rows] == [
        ("user.created", "user"),
        ("user.disabled", "user"),
        ("client.created", "client"),
        ("client.disabled", "client"),
        ("keys.rotated", "key"),
    ]
    assert all(r[2] == "cli" and r[3].startswith("cli") for r in rows)
    created = rows[0]
    assert created[4] == {"username": "finn", "is_admin": False, "roles": ["viewer"]}
    assert created[5]["policy_revision"] >= 1
    text = orjson.dumps([list(r[4] or {}) for r in rows]).decode()
    assert "secret" not in text and "password" not in text
