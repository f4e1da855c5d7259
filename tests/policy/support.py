"""Running the `oms-auth` CLI in-process (typer's runner) from the repository root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner, Result

from app.cli import cli

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@contextmanager
def cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_cli(*args: str, env: dict[str, str] | None = None, where: Path = REPO) -> Result:
    with cwd(where):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
