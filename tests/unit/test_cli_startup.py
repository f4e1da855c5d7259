"""`oms-auth --help` and the light commands start without the service's heavy libraries:
they are imported by the commands that use them (the CPU they cost is measured by `make bench`,
not here, where a loaded machine would make a timing flaky; this checks what is imported)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.server import REPO

HEAVY = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "casbin",
    "redis",
    "authlib",
    "joserfc",
    "argon2",
    "cryptography",
    "uvicorn",
    "pydantic_settings",
    "loguru",
    "limits",
    "pydantic",  # typer builds a pydantic adapter for a parameter whose value is not a bool
    "asyncio",
    "yaml",
    "httpx",
    "rich.markdown",
)

PROBE = """
import atexit, json, sys
heavy = {heavy!r}
atexit.register(lambda: print("IMPORTED=" + json.dumps([m for m in heavy if m in sys.modules]),
                              file=sys.stderr))
sys.argv = ["oms-auth", *{args!r}]
from app.cli import main
main()
"""


def _imported(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY, args=list(args))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("IMPORTED="))
    imported: list[str] = json.loads(line.removeprefix("IMPORTED="))
    return imported


def test_importing_the_cli_imports_no_service_library() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import json, sys; import app.cli; print(json.dumps([m for m in {HEAVY!r} "
            "if m in sys.modules]))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout) == []


LIGHT = [
    ["--help"],
    ["--version"],
    ["users", "--help"],
    ["users", "import", "--help"],
    ["users", "create", "--help"],
    ["clients", "--help"],
    ["keys", "--help"],
    ["policy", "--help"],
    ["policy", "lint", "--help"],
    ["decisions", "--help"],
    ["entities", "--help"],
    ["audit", "--help"],
    ["serve", "--help"],
    ["migrate", "--help"],
]


@pytest.mark.parametrize("args", LIGHT, ids=" ".join)
def test_light_commands_import_no_service_library(args: list[str]) -> None:
    assert _imported(*args) == []
