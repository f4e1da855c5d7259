"""What every `oms-auth` command shares: one-line failures, settings, the acting user."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, NoReturn

import typer
from typer._click import Context
from typer.core import TyperGroup, TyperOption

if TYPE_CHECKING:  # imported when a command runs, so `oms-auth --help` stays fast
    from app.audit.note import AuditNote
    from app.config import Settings


class LightGroup(TyperGroup):
    """A command group whose `--help` does not load pydantic: typer builds a pydantic
    TypeAdapter for every parameter whose value is not already a bool, and a group's help
    flag, when not given, is None. A False default keeps `oms-auth users import --help` and
    the like a few hundred milliseconds of CPU lighter; the flag behaves the same."""

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


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
