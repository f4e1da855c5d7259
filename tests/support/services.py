"""The machine's real PostgreSQL and Redis, as the tests use them.

Each test run works in its own throwaway databases (created here, dropped at the end) and
its own Redis key prefix on a test-only database number, so runs never touch each other's
data and nothing here ever flushes the shared Redis.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import psycopg
import redis

PG_HOST = os.environ.get("OMS_AUTH_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("OMS_AUTH_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("OMS_AUTH_TEST_PG_USER", "postgres")
PG_ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/test"
REDIS_HOST = os.environ.get("OMS_AUTH_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("OMS_AUTH_TEST_REDIS_PORT", "6379"))
REDIS_TEST_DB = int(os.environ.get("OMS_AUTH_TEST_REDIS_DB", "9"))
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}"

RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"
DB_PREFIX = os.environ.get("OMS_AUTH_TEST_DB_PREFIX", "oms_auth_t") + RUN_ID


def check_postgres() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return str(exc).strip().splitlines()[0]
    return None


def check_redis() -> str | None:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        return str(exc)
    return None


def pg_url(name: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def _admin() -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN_DSN, autocommit=True)


def create_pg_database(name: str, *, template: str | None = None) -> str:
    with _admin() as conn:
        sql = f'CREATE DATABASE "{name}"'
        if template:
            sql += f' TEMPLATE "{template}"'
        conn.execute(sql)
    return pg_url(name)


def drop_pg_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_run_databases() -> None:
    """Drop every database this run created (also the ones a failed test left)."""
    with _admin() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (DB_PREFIX + "%",)
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_db_name(label: str = "") -> str:
    return f"{DB_PREFIX}_{label}{secrets.token_hex(3)}"[:63]


def copy_sqlite(template: Path, target: Path) -> str:
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def delete_redis_prefix(prefix: str) -> None:
    """Delete a test's keys; a test that never needed Redis may run without it."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    except redis.ConnectionError:
        if check_redis() is None:  # Redis is up: the failure is real
            raise
    finally:
        client.close()
