"""What every `oms-auth` command shares: one-line failures, settings, the acting user."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:  # imported when a command runs, so `oms-auth --help` stays fast
    from app.audit.note import AuditNote
    from app.config import Settings


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `oms-auth: message` on stderr and exit: never a traceback."""
    typer.echo(f"oms-auth: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit(**overrides: object) -> Settings:
    from app.config import ConfigError, load_settings, unknown_variables

    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        fail(str(exc))
    for name in unknown_variables():
        typer.echo(f"warning: {name} is not a setting; it is ignored", err=True)
    return settings


def cli_actor() -> str:
    """The audit actor of a command: `cli:<login name>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def cli_audit() -> AuditNote:
    from app.audit.note import AuditNote

    return AuditNote(actor=cli_actor(), source="cli")
