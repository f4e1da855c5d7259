"""`oms-auth decisions` (query the decision-log stream) and `oms-auth audit` (export, purge)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from app.commands.common import LightGroup, fail, settings_or_exit

audit_cli = typer.Typer(
    help="The audit trail: export as JSON lines, apply retention.",
    cls=LightGroup,
    rich_markup_mode=None,  # plain help, like every other group: rich costs start-up time
)


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--{name}: not an ISO 8601 time: {value!r}")
    if parsed.tzinfo is None:
        fail(f"--{name} needs a time zone (e.g. 2026-11-25T10:00:00Z)")
    return parsed.astimezone(UTC)


def decisions(
    subject: Annotated[str | None, typer.Option(help="Only this subject id")] = None,
    resource: Annotated[str | None, typer.Option(help="Only this resource id")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action")] = None,
    result: Annotated[str | None, typer.Option(help="allow, deny or error")] = None,
    since: Annotated[str | None, typer.Option(help="Inclusive, ISO 8601 with zone")] = None,
    until: Annotated[str | None, typer.Option(help="Exclusive, ISO 8601 with zone")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first")] = 100,
    file: Annotated[
        Path | None, typer.Option(help="Stream file (default OMS_AUTH_DECISION_LOG_PATH)")
    ] = None,
) -> None:
    """Recent decisions from the decision-log stream file, newest first, as JSON lines."""
    from app.decisions.log import DecisionQuery, read_stream

    if result is not None and result not in ("allow", "deny", "error"):
        fail("--result must be allow, deny or error")
    path = file
    if path is None:
        configured = settings_or_exit().decision_log_path
        if not configured or configured == "-":
            fail("no decision-log file: set OMS_AUTH_DECISION_LOG_PATH or pass --file")
        path = Path(configured)
    if not path.is_file():
        fail(f"decision-log file {path} does not exist")
    query = DecisionQuery(
        subject=subject,
        resource=resource,
        action=action,
        result=result,
        since=_time(since, "since"),
        until=_time(until, "until"),
        limit=limit,
    )
    for record in query.select(read_stream(path)):
        sys.stdout.buffer.write(orjson.dumps(record) + b"\n")


@audit_cli.command("export")
def audit_export(
    actor: Annotated[str | None, typer.Option()] = None,
    action: Annotated[str | None, typer.Option(help="Exact, or a prefix ending in *")] = None,
    subject: Annotated[str | None, typer.Option(help="Whom the event is about")] = None,
    since: Annotated[str | None, typer.Option(help="Inclusive, ISO 8601 with zone")] = None,
    until: Annotated[str | None, typer.Option(help="Exclusive, ISO 8601 with zone")] = None,
) -> None:
    """Every matching audit event, oldest first, one JSON object per line on stdout."""
    from app.store.audit_log import AuditLog, AuditQuery
    from app.store.database import Database

    settings = settings_or_exit()
    query = AuditQuery(
        actor=actor,
        action=action,
        subject=subject,
        since=_time(since, "since"),
        until=_time(until, "until"),
    )

    async def work() -> None:
        db = Database(settings.database_url)
        try:
            async with db.sessions() as session:
                async for entry in AuditLog().export(session, query):
                    sys.stdout.buffer.write(orjson.dumps(entry.as_dict()) + b"\n")
        finally:
            await db.close()

    import asyncio

    try:
        asyncio.run(work())
    except Exception as exc:
        fail(f"export failed: {exc}")


@audit_cli.command("purge")
def audit_purge(
    days: Annotated[
        int | None, typer.Option(help="Keep this many days (default OMS_AUTH_AUDIT_RETENTION_DAYS)")
    ] = None,
) -> None:
    """Delete audit events older than the retention period (the service also does this)."""
    from app.store.audit_log import AuditLog
    from app.store.database import Database

    settings = settings_or_exit()
    keep = days if days is not None else settings.audit_retention_days
    if not keep:
        fail("no retention: set OMS_AUTH_AUDIT_RETENTION_DAYS or pass --days")

    async def work() -> int:
        db = Database(settings.database_url)
        try:
            return await AuditLog().purge(db, older_than_days=keep)
        finally:
            await db.close()

    import asyncio

    try:
        removed = asyncio.run(work())
    except Exception as exc:
        fail(f"purge failed: {exc}")
    typer.echo(f"removed {removed} audit events older than {keep} days")
