"""The database side of `policy push` and `policy pull` (run with `asyncio.run`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from app.adapters.redis.sync import announce_revision
from app.administration.sync import RuleChanges, pull_into, push_rules, stored_rules
from app.commands.common import fail, settings_or_exit
from app.commands.failures import describe_failure
from app.policy.workspace import read_policy_dir
from app.store.audit_log import AuditLog
from app.store.database import Database, redacted
from app.store.policy_changes import SqlPolicyStore

Display = Callable[[Path], str]


def _show(changes: RuleChanges, *, dry_run: bool, what: str) -> None:
    for line in changes.lines():
        typer.echo(line)
    summary = f"{len(changes.added)} to add, {len(changes.removed)} to remove"
    if changes.empty:
        typer.echo(f"{what} already holds exactly these rules; nothing to do")
    elif dry_run:
        typer.echo(f"{summary} (dry run: nothing written)")
    else:
        rev = f", policy revision {changes.revision}" if changes.revision is not None else ""
        typer.echo(f"{summary}: written to {what}{rev}")


def loaded_rule_file(target: Path, policy_dirs: list[Path]) -> Path | None:
    """The policy folder that would load `target` as a rule file (a `*.csv` directly in
    it), or None."""
    resolved = target.resolve()
    for folder in policy_dirs:
        if resolved.suffix == ".csv" and resolved.parent == folder.resolve():
            return folder
    return None


async def push_command(policy_dir: Path, *, dry_run: bool, actor: str, display: Display) -> None:
    settings = settings_or_exit()
    if settings.policy_source == "files+db":
        fail(
            "OMS_AUTH_POLICY_SOURCE=files+db serves the policy files already; a copy pushed "
            "into the database would keep a rule alive after its line is deleted. Push is for "
            "OMS_AUTH_POLICY_SOURCE=db (set it for the service and this command)",
            code=1,
        )
    policy = read_policy_dir(policy_dir, prefix=f"{display(policy_dir)}/")
    errors = policy.lint().errors
    if policy.model is None or errors:
        first = errors[0].text() if errors else "no model"
        fail(f"refusing to push a policy with lint errors: {first}", code=1)
    db = Database(settings.database_url)
    try:
        changes = await push_rules(
            SqlPolicyStore(db, AuditLog()), policy.rules, actor=actor, dry_run=dry_run
        )
    except Exception as exc:
        fail(describe_failure(exc))
    finally:
        await db.close()
    _show(changes, dry_run=dry_run, what=f"the database ({redacted(settings.database_url)})")
    if changes.revision is not None and not await announce_revision(settings, changes.revision):
        typer.echo(
            f"note: instances pick the change up within {settings.policy_poll_interval:g} s "
            "(their database poll)"
        )
    if "db" not in settings.policy_source:
        typer.echo("note: OMS_AUTH_POLICY_SOURCE=files, so the service does not read these rules")


async def pull_command(policy_dir: Path, target: Path, *, dry_run: bool, display: Display) -> None:
    settings = settings_or_exit()
    watched = loaded_rule_file(target, [policy_dir, settings.policy_dir])
    if watched is not None:
        fail(
            f"refusing to write {display(target)}: every *.csv in {display(watched)}/ is "
            "loaded as policy, so the database rules would be served twice. Write it "
            "elsewhere (e.g. -o pulled.csv) and move the rules you keep into the policy files",
            code=1,
        )
    policy = read_policy_dir(policy_dir)
    if policy.model is None:
        fail(f"{display(policy_dir)} has no valid model: {policy.findings[0].text()}", code=1)
    db = Database(settings.database_url)
    try:
        rules = await stored_rules(SqlPolicyStore(db))
    except Exception as exc:
        fail(describe_failure(exc))
    finally:
        await db.close()
    changes = pull_into(target, rules, dry_run=dry_run)
    _show(changes, dry_run=dry_run, what=display(target))
