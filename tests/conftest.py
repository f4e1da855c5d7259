"""Shared fixtures: settings on either backend, a running app, real services.

- `database_url` is parametrised over SQLite (the embedded default) and PostgreSQL (the
  machine's server, a throwaway database per test cloned from a migrated template).
- `redis_url` + a unique `service_name` give each test its own Redis key space.
- `client` runs the app's real lifespan and talks to it through httpx's ASGI transport.
"""

from __future__ import annotations

import gc
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis  # noqa: F401  (imported early: a late import trips a CPython 3.11 AST bug)
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.store.schema import upgrade
from tests.support import services as svc
from tests.support.apps import running

pytest_plugins = ["tests.support.tokens", "tests.support.redis_server"]

REPO = Path(__file__).resolve().parents[1]
POLICY_DIR = REPO / "policies"


# Every test folder and its markers: `unit` needs neither PostgreSQL, Redis nor a server
# process; `integration` talks to the machine's services; `e2e` starts server processes.
_MARKERS = {
    "unit": ("unit",),
    "policy": ("unit",),
    "integration": ("integration",),
    "ops": ("integration",),
    "e2e": ("e2e", "integration"),
    "sdk": ("e2e",),
}
_SERVICE_FIXTURES = {"pg_url", "pg_template", "redis_url", "database_url"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "unit: needs neither PostgreSQL, Redis nor a server (tests/unit, tests/policy)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by its folder; refuse a unit test that asks for PostgreSQL or Redis, and
    a test folder without markers."""
    misplaced = []
    for item in items:
        folder = _folder(item)
        if folder not in _MARKERS:
            raise pytest.UsageError(f"{item.nodeid}: declare the markers of tests/{folder}")
        for marker in _MARKERS[folder]:
            item.add_marker(marker)
        if _SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())) and _is_unit(folder):
            misplaced.append(item.nodeid)
    if misplaced:
        raise pytest.UsageError(f"unit tests that need PostgreSQL or Redis: {misplaced}")
    _longest_files_first(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Check the services only if a test still selected (after `-m`, `-k`) needs them, so
    `pytest tests/unit` and `pytest -m unit` run on a machine with neither PostgreSQL nor
    Redis."""
    if all(_is_unit(_folder(item)) for item in session.items):
        return
    for name, check, where in (
        ("PostgreSQL", svc.check_postgres, svc.PG_ADMIN_DSN),
        ("Redis", svc.check_redis, svc.REDIS_URL),
    ):
        error = check()
        if error:
            pytest.exit(f"{name} is not reachable at {where}: {error}", returncode=3)


def _folder(item: pytest.Item) -> str:
    parts = Path(str(item.path)).relative_to(REPO / "tests").parts
    return parts[0] if len(parts) > 1 else ""


def _is_unit(folder: str) -> bool:
    return "unit" in _MARKERS.get(folder, ())


def _longest_files_first(items: list[pytest.Item]) -> None:
    """Files with a `slow` test first, then those that start servers, then the rest.

    `make test` hands whole files to its workers in this order (`--dist loadfile
    --no-loadscope-reorder`), so the longest files start at once instead of last.
    """
    rank: dict[Path, int] = {}
    for item in items:
        folder = _folder(item)
        here = 0 if item.get_closest_marker("slow") else 1 if folder in ("e2e", "sdk") else 2
        rank[item.path] = min(rank.get(item.path, here), here)
    items.sort(key=lambda item: rank[item.path])  # stable: a file's tests keep their order


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if svc.check_postgres() is None:
        svc.drop_run_databases()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = svc.new_db_name("tmpl")
    url = svc.create_pg_database(name)
    upgrade(url)
    yield name
    svc.drop_pg_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    name = svc.new_db_name()
    url = svc.create_pg_database(name, template=pg_template)
    yield url
    svc.drop_pg_database(name)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return svc.copy_sqlite(sqlite_template, tmp_path / "oms_auth.db")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def service_name() -> Iterator[str]:
    name = f"oms-auth-test-{svc.RUN_ID.replace('_', '-')}-{secrets.token_hex(3)}"
    yield name
    svc.delete_redis_prefix(name + ":")


@pytest.fixture
def redis_url() -> str:
    return svc.REDIS_URL


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped policy that a test may edit."""
    import shutil

    target = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, target, ignore=shutil.ignore_patterns("examples", "tests"))
    return target


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(sqlite_url: str, service_name: str) -> SettingsFactory:
    """Settings for a test: embedded defaults on a fresh SQLite copy unless overridden."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": sqlite_url,
            "policy_dir": POLICY_DIR,
            "policy_source": "files+db",
            "policy_watch": False,
            "service_name": service_name,
            "log_json": True,
            "log_level": "WARNING",
            # Cheap password hashing: tests hash and verify many passwords.
            "argon2_time_cost": 1,
            "argon2_memory_kib": 1024,
            "argon2_parallelism": 1,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
async def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as c:
        yield c


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """For tests that freeze the heap or change the collector's thresholds: undone after."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
