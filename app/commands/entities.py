"""`oms-auth entities import|export`: the entity store to and from a JSON or YAML file.

Import writes every entity in one transaction (a new entity revision), announces the revision
so running instances adopt it at once (without Redis they find it through their database
poll), and refuses a file with any invalid entity before writing anything.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from app.commands.common import LightGroup, fail, settings_or_exit
from app.errors import AuthzError

if TYPE_CHECKING:
    from app.policy.entities import StoredEntity

# The entity store, database and cache modules are imported inside the commands: importing the
# CLI (for `--help` or any other command) must not load SQLAlchemy, Redis or the settings stack.

entities_cli = typer.Typer(
    help="The entity store (properties and parents the engine reads).",
    no_args_is_help=True,
    cls=LightGroup,
    rich_markup_mode=None,  # plain help, like every other group: rich costs start-up time
)


async def _import(path: Path, replace: bool) -> None:
    import asyncio

    import yaml

    from app.adapters.redis.sync import announce_entity_revision
    from app.policy.entities import read_entity_file
    from app.store.database import Database, redacted
    from app.store.entities import Actor, EntityStore

    settings = settings_or_exit()
    try:
        entities = await asyncio.to_thread(read_entity_file, path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        fail(f"cannot read {path}: {exc}")
    except AuthzError as exc:
        fail(exc.message)
    db = Database(settings.database_url)
    try:
        revision = await EntityStore(db).put_many(
            entities, actor=Actor("cli", "cli"), replace=replace
        )
    except Exception as exc:
        fail(f"import into {redacted(settings.database_url)} failed: {exc}")
    finally:
        await db.close()
    mode = " (every other entity removed)" if replace else ""
    typer.echo(f"imported {len(entities)} entities{mode}: entity revision {revision}")
    if not await announce_entity_revision(settings, revision):
        typer.echo(
            f"note: instances pick the change up within {settings.policy_poll_interval:g} s "
            "(their database poll)"
        )


async def _export() -> list[StoredEntity]:
    from app.store.database import Database, redacted
    from app.store.entities import EntityStore

    settings = settings_or_exit()
    db = Database(settings.database_url)
    try:
        return sorted((await EntityStore(db).load()).by_key.values(), key=lambda e: (e.type, e.id))
    except Exception as exc:
        fail(f"reading {redacted(settings.database_url)} failed: {exc}")
    finally:
        await db.close()


@entities_cli.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="entities file (.json, or YAML)")],
    replace: Annotated[
        bool, typer.Option("--replace", help="remove every entity the file does not hold")
    ] = False,
) -> None:
    """Create or replace the file's entities in the store (one transaction)."""
    import asyncio

    asyncio.run(_import(path, replace))


@entities_cli.command("export")
def export_command(
    path: Annotated[Path | None, typer.Argument(help="write here (default: stdout)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or yaml")] = "json",
) -> None:
    """Write every stored entity, in the format `entities import` reads."""
    import asyncio

    if fmt not in ("json", "yaml"):
        fail("--format must be json or yaml")
    document = {"entities": [e.as_dict() for e in asyncio.run(_export())]}
    if fmt == "json":
        text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        import yaml

        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")
        typer.echo(f"exported {len(document['entities'])} entities to {path}", err=True)
