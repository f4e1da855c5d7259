"""Storage on both backends: migrations, DB rules through casbin-sqlalchemy-adapter, revisions."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, inspect, select, text

from app.config import Settings
from app.main import create_app
from app.store.database import Database
from app.store.models import AuditEvent, CasbinRule, PolicyState, utcnow
from app.store.schema import EXPECTED_HEAD, current_revision, head_revision, upgrade
from tests.conftest import SettingsFactory
from tests.support.apps import running

TABLES = {
    "casbin_rule",
    "policy_state",
    "users",
    "oauth_clients",
    "refresh_tokens",
    "signing_keys",
    "revoked_tokens",
    "audit_events",
    "alembic_version",
}


async def test_migrations_create_every_table_and_are_idempotent(database_url: str) -> None:
    upgrade(database_url)  # already at head: a no-op
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            version = (
                await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            ).scalar()
            current = await current_revision(conn)
        assert names >= TABLES
        assert version == head_revision() == current
    finally:
        await db.close()


async def test_the_start_up_check_expects_alembic_s_head(tmp_path: Path) -> None:
    """`EXPECTED_HEAD` (what start-up compares without importing alembic) is the scripts'
    head, and an empty database has no revision."""
    assert head_revision() == EXPECTED_HEAD
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        async with db.engine.connect() as conn:
            assert await current_revision(conn) is None
    finally:
        await db.close()


async def _add_rule(url: str, *values: str) -> None:
    db = Database(url)
    try:
        async with db.transaction() as s:
            cols = {f"v{i}": v for i, v in enumerate(values[1:])}
            await s.execute(insert(CasbinRule).values(ptype=values[0], **cols))
    finally:
        await db.close()


@pytest.mark.parametrize("source", ["db", "files+db"])
async def test_database_rules_are_enforced(
    database_url: str, make_settings: SettingsFactory, source: str
) -> None:
    await _add_rule(database_url, "g", "zoe", "developer")
    await _add_rule(database_url, "p", "zoe", "special:ü'\"", "read", "allow")
    settings = make_settings(database_url=database_url, policy_source=source)
    async with running(create_app(settings)) as client:
        r = await client.post(
            "/api/v1/authz/check",
            json={"subject": "zoe", "resource": "api:schemas", "action": "write", "explain": True},
        )
        # the role assignment comes from the DB; the developer rule only from files
        assert r.json()["allowed"] is (source == "files+db")
        unicode_rule = await client.post(
            "/api/v1/authz/check",
            json={"subject": "zoe", "resource": "special:ü'\"", "action": "read", "explain": True},
        )
        assert unicode_rule.json()["allowed"] is True
        assert unicode_rule.json()["explain"]["matched_rule"]["source"] == "db"


async def test_a_load_takes_a_new_revision_only_for_new_content(
    database_url: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(database_url=database_url)
    app = create_app(settings)
    async with running(app) as client:
        first = (await client.get("/readyz")).json()["checks"]["policy"]["revision"]
        engine = app.state.services.engine
        snapshot = engine.snapshot
        await engine.load(trigger="test")  # same content: same revision, not even rebuilt
        assert engine.revision == first and engine.snapshot is snapshot
        await _add_rule(database_url, "g", "zoe", "developer")  # written behind its back
        await engine.load(trigger="test")
        second = engine.revision
        assert second == first + 1
        r = await client.post(
            "/api/v1/authz/check", json={"subject": "a", "resource": "b", "action": "read"}
        )
        assert r.json()["policy_revision"] == second
        db = app.state.services.db
        async with db.sessions() as s:
            assert await s.scalar(select(PolicyState.revision)) == second
    # another start on the same content adopts the revision
    again = create_app(settings)
    async with running(again) as client:
        assert (await client.get("/readyz")).json()["checks"]["policy"]["revision"] == second


async def test_invalid_db_rule_keeps_old_policy(
    database_url: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(database_url=database_url)
    app = create_app(settings)
    async with running(app) as client:
        before = app.state.services.engine.revision
        await _add_rule(database_url, "p", "x", "y")  # wrong arity
        with pytest.raises(Exception, match="need 4 values"):
            await app.state.services.engine.load(trigger="test")
        assert app.state.services.engine.revision == before
        r = await client.post(
            "/api/v1/authz/check",
            json={"subject": "alice", "resource": "api:schemas", "action": "write"},
        )
        assert r.json()["allowed"] is True


async def test_audit_table_is_append_only(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.transaction() as s:
            await s.execute(
                insert(AuditEvent).values(
                    occurred_at=utcnow(), actor="t", action="test", source="system"
                )
            )
        for statement in ("UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"):
            with pytest.raises(Exception, match="append-only"):
                async with db.transaction() as s:
                    await s.execute(text(statement))
    finally:
        await db.close()


async def test_unmigrated_database_refuses_to_start(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path}/empty.db")
    app = create_app(settings)
    with pytest.raises(Exception, match="oms-auth migrate"):
        async with running(app) as _:
            pass


async def test_client_fixture_uses_sqlite(client: httpx.AsyncClient, settings: Settings) -> None:
    assert settings.database_url.startswith("sqlite:///")


async def test_migrations_build_exactly_the_models(database_url: str) -> None:
    """The Alembic chain and the SQLAlchemy models describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from app.store.models import Base

    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
    finally:
        await db.close()
    assert diff == []
