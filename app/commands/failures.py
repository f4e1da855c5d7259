"""One place that turns any failure of any `oms-auth` command into one line and exit code 2.

The root command group (`GuardedGroup`) runs every command, including those added later,
inside `guard`: a database that is missing, not migrated or unreachable, a Redis that cannot
be reached, or anything unexpected becomes `oms-auth: <what> : <what to do>` on stderr,
never a traceback. Commands may also call `describe_failure` themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer
from typer._click import Context
from typer._click.exceptions import ClickException

from app.commands.common import LightGroup

EXIT_ERROR = 2

_MISSING_TABLE = re.compile(
    r"no such table: (\w+)|relation \"?(\w+)\"? does not exist|UndefinedTable", re.IGNORECASE
)
_UNREACHABLE = re.compile(
    r"connection (refused|failed)|could not connect|could not translate host name|"
    r"Connection refused|timeout expired|server closed the connection|"
    r"database \"[^\"]+\" does not exist|unable to open database file|"
    r"password authentication failed|no password supplied",
    re.IGNORECASE,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        orig = getattr(cur, "orig", None)
        todo.extend(
            [cur.__cause__, cur.__context__, orig if isinstance(orig, BaseException) else None]
        )


def _database_label() -> str:
    try:
        from app.config import load_settings
        from app.store.database import redacted

        return redacted(load_settings().database_url)
    except Exception:
        return "the database (OMS_AUTH_DATABASE_URL)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def describe_failure(exc: BaseException) -> str:
    """One line saying what went wrong and what to do about it."""
    from app.store.database import DatabaseNotFound

    for cur in _chain(exc):
        if isinstance(cur, DatabaseNotFound):
            return str(cur)
    texts = [f"{type(c).__name__}: {c}" for c in _chain(exc)]
    for text in texts:
        missing = _MISSING_TABLE.search(text)
        if missing:
            table = missing.group(1) or missing.group(2)
            what = f" (no table {table})" if table else ""
            return (
                f"database {_database_label()} is not migrated{what}: "
                "run `oms-auth migrate` first (or `make migrate`)"
            )
    for cur in _chain(exc):
        module = type(cur).__module__
        if module.startswith("redis"):
            return (
                f"cannot reach Redis (OMS_AUTH_REDIS_URL): {_first_line(cur)}; "
                "start it or unset OMS_AUTH_REDIS_URL"
            )
    for text in texts:
        if _UNREACHABLE.search(text):
            line = text.split("\n", 1)[0]
            return (
                f"cannot reach database {_database_label()}: {line}; "
                "check that it runs and OMS_AUTH_DATABASE_URL"
            )
    return f"unexpected error: {type(exc).__name__}: {_first_line(exc)}"


class GuardedGroup(LightGroup):
    """The root group: every command's unexpected failure becomes one line + exit 2."""

    def invoke(self, ctx: Context) -> Any:
        from app.store.sqlite_files import create_missing_sqlite

        create_missing_sqlite(False)  # only `migrate` creates an SQLite file
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except Exception as exc:
            typer.echo(f"oms-auth: {describe_failure(exc)}", err=True)
            raise typer.Exit(EXIT_ERROR) from None
        finally:
            create_missing_sqlite(True)
