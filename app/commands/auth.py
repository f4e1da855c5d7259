"""`oms-auth users|clients|keys`: identities and signing keys from a shell.

Passwords are read from stdin only (never argv, which other users of the machine can see),
client secrets are printed once and stored hashed, and every change goes through the same
repositories the service uses, so running instances pick it up (roles on their next policy
reload, disabled users and rotated keys within seconds).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer

from app.commands.common import LightGroup, cli_audit, fail, settings_or_exit
from app.commands.failures import describe_failure
from app.errors import AuthzError
from app.security.names import InvalidName, check_client_id, check_username, collides
from app.tokens.grant_types import GRANT_TYPES

# The service's modules (SQLAlchemy, Redis, argon2, Authlib) are imported by the commands that
# use them, so `oms-auth --help` and the light commands start in a fraction of a second.
if TYPE_CHECKING:
    from app.config import Settings
    from app.store.database import Database
    from app.tokens.revocation import Revocations

T = TypeVar("T")

auth_cli = typer.Typer(no_args_is_help=True, rich_markup_mode=None, cls=LightGroup)
users_cli = typer.Typer(
    help="Users who log in with a password.",
    no_args_is_help=True,
    rich_markup_mode=None,
    cls=LightGroup,
)
clients_cli = typer.Typer(
    help="OAuth clients.", no_args_is_help=True, rich_markup_mode=None, cls=LightGroup
)
keys_cli = typer.Typer(
    help="Token signing keys.", no_args_is_help=True, rich_markup_mode=None, cls=LightGroup
)
auth_cli.add_typer(users_cli, name="users")
auth_cli.add_typer(clients_cli, name="clients")
auth_cli.add_typer(keys_cli, name="keys")


def _run(work: Callable[[Settings, Database], Awaitable[T]]) -> T:
    import asyncio

    from app.store.database import Database

    settings = settings_or_exit()

    async def main() -> T:
        db = Database(settings.database_url, pool_size=2)
        try:
            return await work(settings, db)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except AuthzError as exc:
        fail(exc.message)
    except typer.Exit:
        raise
    except Exception as exc:
        fail(describe_failure(exc))


def _echo_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


# -- users ---------------------------------------------------------------------------------
def _known_roles(settings: Settings, db: Database) -> set[str]:
    from app.administration.users import policy_roles
    from app.factories import rule_sources
    from app.policy.snapshot import PolicySnapshot
    from app.policy.sources import PolicyLoader

    model, rules = PolicyLoader(settings.policy_dir, rule_sources(settings, db)).read()
    return policy_roles(PolicySnapshot.build(model, rules, revision=0))


def _policy_grants(
    settings: Settings, db: Database, subject: str, allows: tuple[str, ...]
) -> tuple[str, ...] | None:
    """The scope a client-credentials token of `subject` would carry now (None: the
    policy cannot say, e.g. a model without roles)."""
    from app.factories import rule_sources
    from app.policy.snapshot import PolicySnapshot
    from app.policy.sources import PolicyLoader
    from app.tokens.scopes import ScopeResolver

    model, rules = PolicyLoader(settings.policy_dir, rule_sources(settings, db)).read()
    snapshot = PolicySnapshot.build(model, rules, revision=0)
    if not snapshot.model.is_rbac:
        return None
    return ScopeResolver().grant(snapshot, subject, requested=None, client_allows=allows)


@users_cli.command("create")
def users_create(
    name: str,
    role: Annotated[list[str] | None, typer.Option(help="Role to assign (repeatable)")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May administer the service")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
) -> None:
    """Create a user; each --role becomes a Casbin `g` rule in the database."""
    import asyncio

    from app.adapters.redis.sync import announce_current_revision
    from app.security.passwords import WeakPassword, check_password_policy
    from app.store.users import UserRepository

    try:
        check_username(name)
    except InvalidName as exc:
        fail(str(exc))
    if not password_stdin:
        fail("give the password on stdin with --password-stdin (never on the command line)")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        check_password_policy(password)
    except WeakPassword as exc:
        fail(str(exc))
    roles = list(dict.fromkeys(role or []))

    async def work(settings: Settings, db: Database) -> None:
        from app.factories import password_hasher

        known = await asyncio.to_thread(_known_roles, settings, db)
        clash = collides(name, known)
        if clash is not None:
            fail(
                f"username {name!r} would be read as the role {clash!r}: users and roles "
                "share the policy's subjects (REQ_006)"
            )
        if roles:
            unknown = [r for r in roles if r not in known]
            if unknown:
                fail(f"role {unknown[0]!r} is not defined by the policy (RBAC_001)")
            if "db" not in settings.policy_source:
                typer.echo(
                    "warning: OMS_AUTH_POLICY_SOURCE=files ignores role assignments stored "
                    "in the database",
                    err=True,
                )
        hasher = password_hasher(settings)
        try:
            password_hash = await hasher.hash(password)
        finally:
            hasher.close()
        user = await UserRepository(db).create(
            username=name,
            password_hash=password_hash,
            is_admin=admin,
            roles=roles,
            audit=cli_audit(),
        )
        assert user is not None
        if roles:
            await announce_current_revision(settings, db)
        typer.echo(
            f"created user {user.username} ({user.id}) roles={','.join(roles) or '-'}"
            f"{' admin' if admin else ''}"
        )

    _run(work)


@users_cli.command("import")
def users_import(
    file: Annotated[Path, typer.Argument(help="CSV (.csv) or JSON Lines (.jsonl) file")],
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="Leave users that already exist alone")
    ] = False,
) -> None:
    """Create many users at once: one transaction, one policy revision, each audited.

    CSV columns: username, password (or password_hash), roles (separated by ';'),
    is_admin, attributes (a JSON object). JSON Lines: the same keys, roles a list.
    Every line is checked before anything is written.
    """
    import asyncio

    from app.administration.user_import import UserFileError, read_users

    if not file.is_file():
        fail(f"no file {str(file)!r}")
    try:
        users = read_users(file)
    except UserFileError as exc:
        fail("nothing imported: " + "; ".join(exc.errors))
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {str(file)!r}: {exc}")

    async def work(settings: Settings, db: Database) -> None:
        from app.adapters.redis.sync import announce_current_revision
        from app.administration.ports import NewUser
        from app.administration.users import policy_roles, unknown_roles
        from app.factories import password_hasher, rule_sources
        from app.policy.snapshot import PolicySnapshot
        from app.policy.sources import PolicyLoader
        from app.store.users import UserAdminRepository

        wanted = {r for u in users for r in u.roles}
        if wanted:

            def known() -> set[str]:
                model, rules = PolicyLoader(settings.policy_dir, rule_sources(settings, db)).read()
                return policy_roles(PolicySnapshot.build(model, rules, revision=0))

            missing = unknown_roles(sorted(wanted), await asyncio.to_thread(known))
            if missing:
                fail(f"nothing imported: role {missing[0]!r} is not defined by the policy")
        repo = UserAdminRepository(db)
        todo = users
        if skip_existing:
            existing = {u.username for u in await repo.all()}
            todo = [u for u in users if u.username not in existing]
            if not todo:
                typer.echo(f"nothing to import: all {len(users)} users exist")
                return
        hasher = password_hasher(settings.model_copy(update={"hash_queue": len(todo)}))
        hasher.queue_timeout = 3600.0  # not a request: wait for the pool, however long
        try:
            hashes = await asyncio.gather(
                *(
                    hasher.hash(u.password) if u.password is not None else _given(u.password_hash)
                    for u in todo
                )
            )
        finally:
            hasher.close()
        batch = [
            NewUser(u.username, h, u.is_admin, u.roles, u.attributes)
            for u, h in zip(todo, hashes, strict=True)
        ]
        revision = await repo.create_many(batch, audit=cli_audit())
        if revision is not None:
            await announce_current_revision(settings, db)
        skipped = len(users) - len(todo)
        typer.echo(
            f"imported {len(batch)} users"
            + (f" (skipped {skipped} existing)" if skipped else "")
            + (f"; policy revision {revision}" if revision is not None else "")
        )

    _run(work)


async def _given(value: str | None) -> str:
    assert value is not None
    return value


@users_cli.command("list")
def users_list(json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List users (roles come from the policy: see `GET /api/v1/users/{id}/permissions`)."""
    from app.store.users import UserRepository

    async def work(settings: Settings, db: Database) -> None:
        users = await UserRepository(db).all()
        rows = [
            {"username": u.username, "id": u.id, "is_admin": u.is_admin, "disabled": u.disabled}
            for u in users
        ]
        if json:
            _echo_json(rows)
            return
        for r in rows:
            flags = " ".join(
                f
                for f in ("admin" if r["is_admin"] else "", "disabled" if r["disabled"] else "")
                if f
            )
            typer.echo(f"{r['username']}\t{r['id']}\t{flags}".rstrip())

    _run(work)


@contextlib.asynccontextmanager
async def _revocations(settings: Settings, db: Database) -> AsyncIterator[Revocations]:
    """The revocation record a disabling command writes to: the DB, then Redis if configured.
    Warns when Redis did not take the change (instances then learn it from the DB)."""
    from app.adapters.redis.client import make_redis
    from app.token_services import revocations_for

    redis = make_redis(settings)
    revocations = revocations_for(settings, db, redis, None)
    try:
        yield revocations
        if revocations.has_pending:
            typer.echo(
                "warning: Redis was not reachable; instances honour the change once "
                "their revocation cache refills (within a minute)",
                err=True,
            )
    finally:
        await revocations.close()
        if redis is not None:
            await redis.aclose()


@users_cli.command("disable")
def users_disable(name: str) -> None:
    """Disable a user: no more logins, and every token it holds stops working."""
    from app.store.refresh_tokens import RefreshTokenRepository
    from app.store.users import UserRepository

    async def work(settings: Settings, db: Database) -> None:
        from app.tokens.service import disable_user

        async with _revocations(settings, db) as revocations:
            user = await disable_user(
                name,
                users=UserRepository(db),
                refresh_tokens=RefreshTokenRepository(db),
                revocations=revocations,
                audit=cli_audit(),
            )
        if user is None:
            fail(f"no user {name!r}", code=1)
        typer.echo(f"disabled user {name}; its tokens no longer validate")

    _run(work)


@users_cli.command("unlock")
def users_unlock(name: str) -> None:
    """Forget a user's failed logins: the per-account back-off ends at once (all instances
    sharing OMS_AUTH_REDIS_URL)."""

    async def work(settings: Settings, db: Database) -> None:
        from app.adapters.redis.client import close_redis, make_redis
        from app.adapters.redis.login_failures import RedisFailureStore
        from app.security.login_guard import LoginGuard, unlock_account
        from app.store.alerts import AuditWriter

        if settings.redis_url is None:
            fail(
                "OMS_AUTH_REDIS_URL is unset: failed logins live in each instance's memory; "
                "restarting the instance forgets them"
            )
        redis = make_redis(settings)  # a single server, Sentinel's primary or a cluster
        assert redis is not None
        try:
            guard = LoginGuard(RedisFailureStore(redis, settings.key_prefix))
            cleared = await unlock_account(guard, name, audit=AuditWriter(db, cli_audit()))
        finally:
            await close_redis(redis)
        typer.echo(f"unlocked {name}: {cleared} failure bucket(s) cleared")

    _run(work)


# -- clients -------------------------------------------------------------------------------
@clients_cli.command("create")
def clients_create(
    client_id: Annotated[str, typer.Argument(metavar="ID")],
    scope: Annotated[str, typer.Option(help="Space-separated scopes the client may hold")],
    grant: Annotated[
        list[str] | None,
        typer.Option(help=f"Grant type (repeatable): {', '.join(GRANT_TYPES)}"),
    ] = None,
    audience: Annotated[str | None, typer.Option(help="`aud` of its tokens")] = None,
    name: Annotated[str, typer.Option(help="Display name")] = "",
) -> None:
    """Register an OAuth client; its secret is printed once, only its hash is stored."""
    import asyncio

    from app.security.client_secrets import hash_client_secret, new_client_secret
    from app.store.clients import ClientRepository
    from app.tokens.scopes import parse_scope

    try:
        check_client_id(client_id)
    except InvalidName as exc:
        fail(str(exc))
    grants = list(dict.fromkeys(grant or ["client_credentials"]))
    bad = [g for g in grants if g not in GRANT_TYPES]
    if bad:
        fail(f"unknown grant type {bad[0]!r} (one of {', '.join(GRANT_TYPES)})")
    try:
        scopes = parse_scope(scope) or ()
    except ValueError as exc:
        fail(str(exc))
    secret = new_client_secret()

    async def work(settings: Settings, db: Database) -> tuple[str, ...] | None:
        if client_id == settings.service_name:
            fail(f"client id {client_id!r} is the service's own (its login API's tokens)")
        await ClientRepository(db).create(
            client_id=client_id,
            secret_hash=hash_client_secret(secret),
            grant_types=grants,
            scopes=scopes,
            name=name,
            audience=audience,
            audit=cli_audit(),
        )
        return await asyncio.to_thread(_policy_grants, settings, db, f"client:{client_id}", scopes)

    granted = _run(work)
    typer.echo(f"client_id: {client_id}")
    typer.echo(f"client_secret: {secret}")
    typer.echo("(store the secret now: it is not shown again)", err=True)
    subject = f"client:{client_id}"
    if granted is None:
        return
    if granted:
        typer.echo(f"its client_credentials tokens carry now: {' '.join(granted)}", err=True)
        return
    typer.echo(
        f"warning: --scope is only an upper bound; a token carries the scopes the policy also "
        f"grants the subject {subject}, and it grants it nothing yet, so its tokens carry "
        f'"scope": "". Give it a role, e.g. the line `g, {subject}, viewer` in a policy '
        f"file, or PUT /api/v1/roles/viewer/members/{subject}",
        err=True,
    )


@clients_cli.command("list")
def clients_list() -> None:
    """List OAuth clients (never their secrets)."""
    from app.store.clients import ClientRepository

    async def work(settings: Settings, db: Database) -> None:
        for c in await ClientRepository(db).all():
            typer.echo(
                f"{c.client_id}\tgrants={','.join(sorted(c.grant_types))}\t"
                f"scope={' '.join(c.scopes)}{chr(9) + 'disabled' if c.disabled else ''}"
            )

    _run(work)


@clients_cli.command("disable")
def clients_disable(client_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Disable a client: it can no longer authenticate, and every access token naming it
    (its own and its users') stops validating."""
    from app.store.clients import ClientRepository

    async def work(settings: Settings, db: Database) -> None:
        from app.tokens.service import disable_client

        async with _revocations(settings, db) as revocations:
            found = await disable_client(
                client_id, clients=ClientRepository(db), revocations=revocations, audit=cli_audit()
            )
        if not found:
            fail(f"no client {client_id!r}", code=1)
        typer.echo(f"disabled client {client_id}; its tokens no longer validate")

    _run(work)


# -- keys ----------------------------------------------------------------------------------
@keys_cli.command("rotate")
def keys_rotate(
    alg: Annotated[str | None, typer.Option(help="RS256, ES256 or EdDSA")] = None,
) -> None:
    """Make a new signing key; the old one keeps verifying until its tokens expire."""
    from app.store.audit_log import AuditLog
    from app.tokens import keys as signing_keys

    async def work(settings: Settings, db: Database) -> None:
        from app.token_services import key_store

        chosen = alg or settings.signing_alg
        if chosen not in signing_keys.PUBLIC_KEY_TYPES:
            fail(f"unsupported algorithm {chosen!r}")
        password = settings.encryption_key.get_secret_value() if settings.encryption_key else None
        store = key_store(settings, db)
        previous = signing_keys.newest_active(await store.load())
        stored = await signing_keys.rotate(store, alg=chosen, password=password)
        async with db.transaction() as session:
            await AuditLog().write(
                session,
                cli_audit(),
                action="keys.rotated",
                target=f"key:{stored.kid}",
                before={"kid": previous.kid, "alg": previous.alg} if previous else None,
                after={"kid": stored.kid, "alg": stored.alg},
            )
        typer.echo(f"new signing key {stored.kid} ({stored.alg}) is active")

    _run(work)


@keys_cli.command("list")
def keys_list() -> None:
    """List signing keys (public parts only)."""

    async def work(settings: Settings, db: Database) -> None:
        from app.token_services import key_store

        for k in await key_store(settings, db).load():
            typer.echo(f"{k.kid}\t{k.alg}\t{k.status}\t{k.created_at.isoformat()}")

    _run(work)
