"""Every `oms-auth` command in a state it cannot work in says so in one line, exit code 2."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support import services as svc
from tests.support.server import CLI, REPO, cli_env, free_port

pytestmark = pytest.mark.integration

DB_COMMANDS = [
    ["check", "alice", "api:schemas", "write"],
    ["users", "list"],
    ["clients", "list"],
    ["keys", "list"],
    ["policy", "pull", "policies", "-o", "pulled.csv"],
]


def run_in(
    folder: Path, *args: str, env: Mapping[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=cli_env(env or {}),
        cwd=folder,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def fresh_folder(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    return tmp_path


@pytest.mark.parametrize("command", DB_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_before_migrate_one_line_and_no_var_folder(fresh_folder: Path, command: list[str]) -> None:
    result = run_in(fresh_folder, *command)
    assert_one_line(result, "does not exist", "oms-auth migrate")
    assert not (fresh_folder / "var").exists()


def test_users_create_before_migrate(fresh_folder: Path) -> None:
    result = run_in(
        fresh_folder, "users", "create", "erin", "--password-stdin", input="a long password\n"
    )
    assert_one_line(result, "oms-auth migrate")
    assert not (fresh_folder / "var").exists()


@pytest.mark.parametrize("command", DB_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_empty_database_is_not_migrated(fresh_folder: Path, command: list[str]) -> None:
    (fresh_folder / "var").mkdir()
    (fresh_folder / "var" / "oms_auth.db").touch()
    result = run_in(fresh_folder, *command)
    assert_one_line(result, "is not migrated", "run `oms-auth migrate`")


def test_push_before_migrate(fresh_folder: Path) -> None:
    (fresh_folder / "var").mkdir()
    (fresh_folder / "var" / "oms_auth.db").touch()
    result = run_in(fresh_folder, "policy", "push", env={"OMS_AUTH_POLICY_SOURCE": "db"})
    assert_one_line(result, "is not migrated")


def test_unmigrated_postgres_and_unreachable_postgres(fresh_folder: Path) -> None:
    name = svc.new_db_name("empty")
    url = svc.create_pg_database(name)
    try:
        empty = run_in(fresh_folder, "users", "list", env={"OMS_AUTH_DATABASE_URL": url})
    finally:
        svc.drop_pg_database(name)
    assert_one_line(empty, "is not migrated", "oms-auth migrate")
    port = free_port()
    down = run_in(
        fresh_folder,
        "clients",
        "list",
        env={"OMS_AUTH_DATABASE_URL": f"postgresql+psycopg://root@127.0.0.1:{port}/nothing"},
    )
    assert_one_line(down, "cannot reach database", f"127.0.0.1:{port}")


def test_migrate_then_check_works_from_another_folder(fresh_folder: Path) -> None:
    assert run_in(fresh_folder, "migrate").returncode == 0
    assert (fresh_folder / "var" / "oms_auth.db").is_file()
    allowed = run_in(fresh_folder, "check", "alice", "api:schemas", "write")
    assert allowed.returncode == 0, allowed.stderr


def test_version_and_short_help(tmp_path: Path) -> None:
    version = run_in(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("oms-auth 0.")
    for args in (["-h"], ["users", "-h"], ["policy", "lint", "-h"]):
        shown = run_in(tmp_path, *args)
        assert shown.returncode == 0 and "Usage:" in shown.stdout, (args, shown.stderr)


def test_second_serve_fails_fast_before_loading_the_policy(fresh_folder: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_in(fresh_folder, "serve", env={"OMS_AUTH_PORT": str(port)})
    assert_one_line(result, "already in use", str(port), "already running")
    assert "service.started" not in result.stdout and "policy" not in result.stdout
    assert not (fresh_folder / "var").exists()
