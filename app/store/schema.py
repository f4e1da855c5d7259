"""Alembic, driven from code: `oms-auth migrate` and the start-up schema check.

The start-up check needs no alembic import (about a tenth of the service's start-up): the
code's head revision is `EXPECTED_HEAD` (a test holds it to alembic's own head) and the
database's is read from alembic's version table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

# The newest migration under migrations/versions: update it with every new migration.
EXPECTED_HEAD = "0006_policy_fingerprint"
_READ_VERSION = text("SELECT version_num FROM alembic_version")


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    """The head revision of the migration scripts, as alembic computes it."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def current_revision(conn: AsyncConnection) -> str | None:
    """The database's revision (None before the first migration), as alembic records it."""

    def read(sync_conn: Connection) -> str | None:
        if not inspect(sync_conn).has_table("alembic_version"):
            return None
        rows = sync_conn.execute(_READ_VERSION).all()
        if len(rows) > 1:
            heads = sorted(str(r[0]) for r in rows)
            raise RuntimeError(f"the database has several schema heads: {heads}")
        return str(rows[0][0]) if rows else None

    return await conn.run_sync(read)
