"""Connections to the relational store.

The request path uses an async engine (aiosqlite / psycopg async) so no DB call blocks the
event loop. A sync engine on the same URL serves the places whose libraries are synchronous:
casbin-sqlalchemy-adapter (run in a worker thread), Alembic and the CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.store.sqlite_files import creates_missing_sqlite


def sync_url(url: str) -> str:
    """The URL for synchronous drivers (pysqlite, psycopg)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return u.set(drivername="sqlite").render_as_string(hide_password=False)
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def async_url(url: str) -> str:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return u.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # Writers queue for the lock; SQLite's wait is not first-come-first-served, so a writer
    # behind a busy neighbour can wait several of its turns.
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_manual_transactions(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN is always DEFERRED; `_sqlite_begin` issues it instead.
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    """Writers take SQLite's write lock when they start (BEGIN IMMEDIATE), so they queue on
    `busy_timeout` instead of failing when a read transaction cannot be upgraded."""
    mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


SQLITE_BEGIN = "oms_sqlite_begin"


class DatabaseNotFound(RuntimeError):
    """An SQLite file that does not exist, opened where only `migrate` may create it."""


def ensure_sqlite_dir(url: str) -> None:
    """Create the parent folder of an SQLite file so a fresh clone needs no set-up; or,
    where creating is off, raise `DatabaseNotFound` for a file that does not exist."""
    from pathlib import Path

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        path = Path(u.database).expanduser()
        if not creates_missing_sqlite():
            if not path.is_file():
                raise DatabaseNotFound(
                    f"database {url} does not exist ({path.absolute()}): "
                    "run `oms-auth migrate` first (or `make migrate`), from the folder "
                    "the service runs in, or set OMS_AUTH_DATABASE_URL"
                )
            return
        path.parent.mkdir(parents=True, exist_ok=True)


def make_sync_engine(url: str, *, pool_size: int = 5) -> Engine:
    ensure_sqlite_dir(url)
    is_sqlite = make_url(url).get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if not is_sqlite:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
    engine = create_engine(sync_url(url), **kwargs)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Database:
    """Owns both engines for one database URL; built in the app lifespan, closed there too."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int | None = None,
        pool_timeout: float = 3.0,
    ) -> None:
        ensure_sqlite_dir(url)
        self.url = url
        self.backend = make_url(url).get_backend_name()
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.backend != "sqlite":
            # A request waits `pool_timeout` for a connection (then 503 SYS_001), never longer.
            overflow = pool_size if max_overflow is None else max_overflow
            kwargs.update(pool_size=pool_size, max_overflow=overflow, pool_timeout=pool_timeout)
        self.engine: AsyncEngine = create_async_engine(async_url(url), **kwargs)
        if self.backend == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "connect", _sqlite_manual_transactions)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._sync_engine: Engine | None = None
        self._pool_size = pool_size

    @property
    def sync_engine(self) -> Engine:
        if self._sync_engine is None:
            self._sync_engine = make_sync_engine(self.url, pool_size=max(2, self._pool_size // 2))
        return self._sync_engine

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            if self.backend == "sqlite":
                await session.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def close(self) -> None:
        await self.engine.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()
