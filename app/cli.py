"""`oms-auth`: run the service and manage it from a shell.

Every command reads the same settings as the service (`OMS_AUTH_*`), and any error is printed
as one line on stderr with a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from app.commands.auth import auth_cli
from app.commands.common import fail, settings_or_exit
from app.commands.entities import entities_cli
from app.commands.failures import GuardedGroup
from app.commands.observe import audit_cli, decisions
from app.commands.policy import policy_cli
from app.errors import AuthzError

if TYPE_CHECKING:  # the service is imported by the commands that need it: --help stays fast
    from app.config import Settings

cli = typer.Typer(
    name="oms-auth",
    help="Policy-engine based authorization service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich's Markdown renderer costs ~0.35 s of start-up
    # Every command, added here or later, fails with one line and exit code 2.
    cls=GuardedGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("oms-auth")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"oms-auth {_version()}")
        raise typer.Exit(0)


@cli.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """Policy-engine based authorization service.

    Settings come from OMS_AUTH_* variables (see the README). Commands that use the database
    need `oms-auth migrate` first; only `migrate` creates an SQLite file.
    """


cli.add_typer(policy_cli, name="policy")
cli.add_typer(entities_cli, name="entities")
cli.add_typer(auth_cli)  # users, clients, keys
cli.add_typer(audit_cli, name="audit")
cli.command("decisions")(decisions)


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema to the latest revision."""
    from app.store.database import redacted
    from app.store.schema import head_revision, upgrade
    from app.store.sqlite_files import create_missing_sqlite

    settings = settings_or_exit()
    create_missing_sqlite(True)
    try:
        upgrade(settings.database_url)
    except Exception as exc:
        fail(f"migration failed on {redacted(settings.database_url)}: {exc}")
    typer.echo(f"database {redacted(settings.database_url)} is at revision {head_revision()}")


async def _preflight(settings: Settings) -> None:
    """Checks worth one clear line before the workers start: the schema and the signing key.
    The policy is read once, by each worker itself."""
    from app.main import _check_schema
    from app.services import compose
    from app.startup import StartupError
    from app.tokens.keys import KeyDecryptionError

    services = await compose(settings)
    try:
        await _check_schema(services)
        await services.tokens.service.keys.check_readable()
    except (StartupError, KeyDecryptionError) as exc:
        fail(str(exc))
    finally:
        await services.close()


def _port_is_free(host: str, port: int) -> None:
    """Fail fast, before loading anything, when the address is taken (another instance)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        fail(f"cannot bind {host}:{port}: {exc} (OMS_AUTH_HOST)")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            fail(
                f"{host}:{port} is already in use ({exc.strerror}): is oms-auth already "
                "running? Stop it, or pick another port with OMS_AUTH_PORT / --port"
            )


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (OMS_AUTH_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (OMS_AUTH_PORT)")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (OMS_AUTH_WORKERS); > 1 needs Redis")
    ] = None,
) -> None:
    """Serve the HTTP API (checks the database schema and signing key first)."""
    from app.serving import StartFailed, serve_one, serve_workers

    given = {"host": host, "port": port, "workers": workers}
    settings = settings_or_exit(**{k: v for k, v in given.items() if v is not None})
    _port_is_free(settings.host, settings.port)
    try:
        if settings.workers > 1:
            # Checked once here, so a broken database or key is one line, not N workers
            # failing; one worker makes the same checks in its own start-up instead.
            import asyncio

            asyncio.run(_preflight(settings))
            serve_workers(settings)
        else:
            serve_one(settings)
    except StartFailed as exc:
        fail(str(exc))


@cli.command()
def check(
    subject: str,
    resource: str,
    action: str,
    domain: Annotated[str | None, typer.Option(help="Domain, for models with domains")] = None,
    explain: Annotated[bool, typer.Option(help="Print the deciding rule and role path")] = False,
    definition: Annotated[
        str | None, typer.Option(help='Request/policy/matcher set, e.g. "r2" for r2/p2/m2')
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option(help="Another request token, TOKEN=VALUE (repeatable)"),
    ] = None,
) -> None:
    """Decide one request against the configured policy, without a running server.

    Exit code 0 = allowed, 1 = denied, 2 = error.
    """
    import asyncio

    import orjson

    from app.factories import rule_sources
    from app.policy.request import DecisionRequest
    from app.policy.snapshot import PolicySnapshot
    from app.store.database import Database

    settings = settings_or_exit()
    db = Database(settings.database_url)
    try:
        from app.policy.sources import PolicyLoader

        model, rules = PolicyLoader(settings.policy_dir, rule_sources(settings, db)).read()
        snapshot = PolicySnapshot.build(model, rules, revision=0)
        pairs = [item.partition("=") for item in context or []]
        if any(not key or not eq for key, eq, _ in pairs):
            fail("--context takes TOKEN=VALUE")
        request = replace(
            DecisionRequest.of(subject, resource, action, domain),
            context={key: value for key, _, value in pairs} or None,
            definition=definition,
        )
        decision = snapshot.decide(request, explain=explain)
    except AuthzError as exc:
        fail(exc.message)
    finally:
        asyncio.run(db.close())
    out = {"allowed": decision.allowed}
    if explain:
        out["explain"] = decision.explain()  # type: ignore[assignment]
    typer.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    raise typer.Exit(0 if decision.allowed else 1)


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
