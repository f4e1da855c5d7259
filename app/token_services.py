"""Assembling the token service for one instance: stores, caches, keys, the OAuth server.

`build_token_components` runs in the composition root (`app.services.compose`, no I/O);
`start_tokens` runs in the lifespan once the schema is checked and the policy loaded: it
loads or creates the signing key, creates the bootstrap admin, fills the revocation cache,
subscribes to policy changes and starts the housekeeping loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from loguru import logger

from app.adapters.http.oauth import OAuthHTTP
from app.adapters.http.responses import http_headers, http_status
from app.adapters.redis.batch import RedisBatcher
from app.adapters.redis.client import RedisClient, cluster_options, is_cluster
from app.adapters.redis.login_failures import RedisFailureStore
from app.adapters.redis.rate_limits import redis_rate_limits
from app.adapters.redis.revocation_cache import RedisRevocationCache
from app.audit.note import AuditNote, SecurityAlert, SecurityEvents
from app.config import Settings
from app.factories import password_hasher
from app.policy.engine import PolicyEngine
from app.security.login_guard import BackoffPolicy, FailureStore, LoginGuard, MemoryFailureStore
from app.security.passwords import PasswordHasher
from app.security.rate_limits import RateLimits
from app.startup import StartupError
from app.store.alerts import AlertRecorder
from app.store.availability import is_unavailable
from app.store.clients import ClientRepository
from app.store.database import Database
from app.store.key_files import FileKeyStore
from app.store.refresh_tokens import RefreshTokenRepository
from app.store.revocations import DatabaseRevocationStore
from app.store.signing_keys import DatabaseKeyStore
from app.store.users import UserRepository
from app.tokens.accounts import Accounts, LoginObserver
from app.tokens.issuer import ClientContext, TokenConfig, TokenIssuer
from app.tokens.keys import KeyRing
from app.tokens.metrics import TokenMetrics
from app.tokens.oauth.bridge import Bridge
from app.tokens.oauth.server import OAuthServer
from app.tokens.ports import KeyStore, RevocationCache
from app.tokens.revocation import MemoryRevocationCache, Revocations
from app.tokens.rotation import RefreshRotation
from app.tokens.scopes import ScopeResolver
from app.tokens.service import TokenService
from app.tokens.staleness import PermissionCutoff
from app.tokens.validator import TokenValidator

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

REDIS_COMPLETE_SECONDS = 60.0  # how long a filled Redis revocation cache is trusted
PURGE_EVERY_SECONDS = 600.0
KEY_LIFETIME_SLACK = 60


@dataclass(frozen=True, eq=False)
class TokenComponents:
    settings: Settings
    service: TokenService
    hasher: PasswordHasher
    rate_limits: RateLimits
    metrics: TokenMetrics
    users: UserRepository
    clients: ClientRepository
    engine: PolicyEngine
    oauth: OAuthHTTP
    batcher: RedisBatcher | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)  # started by start_tokens

    @property
    def keys(self) -> KeyRing:
        return self.service.keys

    async def close(self) -> None:
        """Everything is told to stop before anything is waited for: the shutdown bounds each
        step (`app.services.Lifecycle`), and a Redis user left running when Redis closes would
        open a connection on the closed client that nothing ever closes."""
        for task in self._tasks:
            task.cancel()
        if self.batcher is not None:
            self.batcher.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        closed = await asyncio.gather(
            self.service.revocations.close(),
            self.service.accounts.close(),
            self.rate_limits.close(),
            return_exceptions=True,
        )
        for failure in (c for c in closed if isinstance(c, Exception)):
            logger.opt(exception=failure).error("shutdown.step_failed", step="tokens")
        if self.batcher is not None:  # last of the Redis users: after it, Redis may close
            await self.batcher.close()
        self.hasher.close()
        self.oauth.close()


def key_store(settings: Settings, db: Database) -> KeyStore:
    if settings.key_dir is not None:
        return FileKeyStore(settings.key_dir)
    return DatabaseKeyStore(db)


def key_ring(settings: Settings, db: Database) -> KeyRing:
    password = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    return KeyRing(
        key_store(settings, db),
        alg=settings.signing_alg,
        password=password,
        reload_interval=settings.key_reload_interval,
        max_token_lifetime=settings.access_token_ttl + KEY_LIFETIME_SLACK,
    )


def login_guard(
    settings: Settings, db: Database, redis: RedisClient | None, metrics: TokenMetrics | None
) -> LoginGuard:
    store: FailureStore = (
        RedisFailureStore(redis, settings.key_prefix) if redis is not None else MemoryFailureStore()
    )
    recorder = AlertRecorder(db)

    async def alert(event: SecurityAlert, target: str) -> None:
        if metrics is not None:
            metrics.alerts.labels(kind=event.kind).inc()
        logger.warning("alert.login_burst", target=target, **dict(event.details))
        await recorder(event, target)

    policy = BackoffPolicy(
        free_failures=settings.login_free_failures,
        base_delay=settings.login_backoff_base,
        max_delay=settings.login_backoff_max,
        alert_every=settings.login_alert_every,
    )
    return LoginGuard(store, policy, alert=alert)


def revocations_for(
    settings: Settings,
    db: Database,
    redis: RedisClient | None,
    metrics: TokenMetrics | None,
    batcher: RedisBatcher | None = None,
) -> Revocations:
    cache: RevocationCache
    if redis is not None:
        cache = RedisRevocationCache(redis, prefix=settings.key_prefix, batcher=batcher)
    else:
        cache = MemoryRevocationCache()  # in process already: nothing to keep a window of
    return Revocations(
        DatabaseRevocationStore(db),
        cache,
        complete_for=REDIS_COMPLETE_SECONDS,
        metrics=metrics,
        recent_seconds=settings.caller_cache_seconds if redis is not None else 0.0,
    )


def build_token_components(
    settings: Settings,
    *,
    db: Database,
    redis: RedisClient | None,
    engine: PolicyEngine,
    registry: CollectorRegistry | None = None,
    metrics: TokenMetrics | None = None,
    events: SecurityEvents | None = None,
    observer: LoginObserver | None = None,
) -> TokenComponents:
    """Everything the token service is made of; `events` is the audit trail of issued,
    refreshed and revoked tokens and failed logins, `observer` the login-burst detector.
    Called in a running event loop (the OAuth server bridges its threads back to it)."""
    metrics = metrics or TokenMetrics(registry)
    users, clients = UserRepository(db), ClientRepository(db)
    refresh_tokens = RefreshTokenRepository(db)
    hasher = password_hasher(settings)
    # One pipeline per loop turn for a request's revocation lookup and check charge.
    batcher = RedisBatcher(redis) if redis is not None else None
    limits = redis_rate_limits(
        login_ip=settings.rate_limit_login_ip,
        login_user=settings.rate_limit_login_user,
        refresh=settings.rate_limit_refresh,
        check=settings.rate_limit_check,
        check_service=settings.rate_limit_check_service,
        redis=redis,
        redis_url=settings.redis_url,
        cluster_options=cluster_options(settings) if redis and is_cluster(redis) else None,
        prefix=settings.key_prefix,
        batcher=batcher,
        check_window=settings.caller_cache_seconds,
    )
    keys = key_ring(settings, db)
    revocations = revocations_for(settings, db, redis, metrics, batcher)
    config = TokenConfig(
        issuer=settings.issuer,
        audience=settings.audience,
        access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
    )
    issuer = TokenIssuer(
        config=config,
        keys=keys,
        policy=engine,
        scopes=ScopeResolver(),
        refresh_tokens=refresh_tokens,
        metrics=metrics,
        events=events,
    )
    rotation = RefreshRotation(
        issuer,
        refresh_tokens,
        users,
        revocations,
        limiter=limits,
        metrics=metrics,
        grace=settings.refresh_reuse_grace,
    )
    service = TokenService(
        first_party=ClientContext(settings.service_name),
        accounts=Accounts(
            users,
            hasher,
            limiter=limits,
            metrics=metrics,
            guard=login_guard(settings, db, redis, metrics),
            events=events,
            observer=observer,
        ),
        issuer=issuer,
        rotation=rotation,
        validator=TokenValidator(
            settings.issuer, settings.audience, keys, revocations, metrics=metrics
        ),
        revocations=revocations,
        refresh_tokens=refresh_tokens,
        users=users,
        cutoff=PermissionCutoff(
            users, revocations, clients=clients, metrics=metrics, events=events
        ),
        keys=keys,
        events=events,
    )
    server = OAuthServer(
        tokens=service,
        clients=clients,
        bridge=Bridge(asyncio.get_running_loop()),
        http_form=lambda error: (http_status(error), http_headers(error)),
    )
    oauth = OAuthHTTP(server, require_https=settings.https_required, unavailable=is_unavailable)
    return TokenComponents(
        settings, service, hasher, limits, metrics, users, clients, engine, oauth, batcher
    )


async def start_tokens(
    tokens: TokenComponents,
    *,
    memory: bool,
    purges: Sequence[Callable[[], Awaitable[int]]] = (),
) -> None:
    """Start-up work that needs the database (called from the lifespan). `memory`: no Redis,
    the revocation cache lives in this process; `purges` run with the housekeeping."""
    service = tokens.service
    await service.keys.start()
    # The dummy hash (equal timing for unknown users) is made in the background: hashing runs
    # at a low CPU priority and must not hold the start-up (it is made on first use anyway).
    tokens._tasks.append(asyncio.create_task(_warm_up_quietly(tokens.hasher)))
    await bootstrap_admin(tokens)
    try:
        await service.revocations.warm()
    except Exception as exc:
        logger.warning("auth.revocation.warm_failed", error=type(exc).__name__)
    service.cutoff.watch(tokens.engine.snapshot if tokens.engine.loaded else None)
    tokens.engine.on_change(service.cutoff.on_policy_change)
    tokens._tasks.append(asyncio.create_task(_housekeeping(tokens, memory=memory, purges=purges)))
    tokens._tasks.append(asyncio.create_task(service.keys.refresh_forever(), name="key-refresh"))
    cache = service.revocations.cache
    if isinstance(cache, RedisRevocationCache) and tokens.settings.caller_cache_seconds > 0:
        watch = cache.watch(service.revocations.forget_recent)
        tokens._tasks.append(asyncio.create_task(watch, name="revocation-news"))


async def _warm_up_quietly(hasher: PasswordHasher) -> None:
    try:
        await hasher.warm_up()
    except Exception as exc:
        logger.warning("auth.hasher.warm_up_failed", error=type(exc).__name__)


def _bootstrap_roles(tokens: TokenComponents) -> list[str]:
    """The role the bootstrap admin gets in the policy, when it can get it (else a warning:
    it then holds the admin flag only, and resource servers that check scopes deny it)."""
    settings = tokens.settings
    role = settings.bootstrap_admin_role
    if not role:
        return []
    if "db" not in settings.policy_source:
        logger.warning(
            "auth.bootstrap_admin.role_not_stored",
            role=role,
            reason="OMS_AUTH_POLICY_SOURCE=files ignores role assignments in the database",
            hint=f"add `g, <username>, {role}` to a policy file",
        )
        return []
    snapshot = tokens.engine.snapshot if tokens.engine.loaded else None
    known: set[str] = set()
    if snapshot is not None and snapshot.model.is_rbac:
        known = snapshot.subjects()[1]
        sub_i = snapshot.model.field_index("p", "sub") or 0
        known |= {r.values[sub_i] for r in snapshot.rules if r.ptype == "p"}
    if role not in known:
        logger.warning(
            "auth.bootstrap_admin.role_unknown",
            role=role,
            hint="the policy defines no such role; set OMS_AUTH_BOOTSTRAP_ADMIN_ROLE",
        )
        return []
    return [role]


def _refuse_role_name(tokens: TokenComponents, username: str) -> None:
    """Users and roles share Casbin's subject namespace: a bootstrap admin named like a role
    (e.g. `admin` with OMS_AUTH_BOOTSTRAP_ADMIN_ROLE=admin) would close a role cycle."""
    from app.security.names import collides

    roles = {tokens.settings.bootstrap_admin_role} - {""}
    snapshot = tokens.engine.snapshot if tokens.engine.loaded else None
    if snapshot is not None and snapshot.model.is_rbac:
        roles |= set(snapshot.subjects()[1])
    clash = collides(username, roles)
    if clash is not None:
        raise StartupError(
            f"OMS_AUTH_BOOTSTRAP_ADMIN names the user {username!r}, which is a role name "
            f"({clash!r}); users and roles may not share a name: choose another username"
        )


async def bootstrap_admin(tokens: TokenComponents) -> None:
    """`OMS_AUTH_BOOTSTRAP_ADMIN=username:password` creates an admin when no user exists,
    with the admin flag and the policy role `OMS_AUTH_BOOTSTRAP_ADMIN_ROLE`."""
    spec = tokens.settings.bootstrap_admin
    if spec is None:
        return
    username, _, password = spec.get_secret_value().partition(":")  # validated by Settings
    ignored = (
        "auth.bootstrap_admin.ignored",
        "users exist already; OMS_AUTH_BOOTSTRAP_ADMIN only acts on an empty user table: "
        "remove it (create more users with `oms-auth users create`)",
    )
    if await tokens.users.count() > 0:
        logger.warning(ignored[0], reason=ignored[1])
        return
    _refuse_role_name(tokens, username)
    roles = _bootstrap_roles(tokens)
    created = await tokens.users.create(
        username=username,
        password_hash=await tokens.hasher.hash(password),
        is_admin=True,
        roles=roles,
        only_if_empty=True,
        audit=AuditNote(actor="system:bootstrap", source="system"),
    )
    if created is None:
        logger.warning(ignored[0], reason=ignored[1])
        return
    logger.info(
        "auth.bootstrap_admin.created", username=created.username, user_id=created.id, roles=roles
    )
    if roles:
        await tokens.engine.load(trigger="bootstrap", bump=False)


async def _housekeeping(
    tokens: TokenComponents,
    *,
    memory: bool,
    purges: Sequence[Callable[[], Awaitable[int]]] = (),
) -> None:
    """Keep the revocation cache complete and the tables small.

    Without Redis, the in-process cache is refreshed from the database every poll interval
    (writes by other instances or the CLI arrive that way). With Redis, it is refilled well
    before its completeness marker lapses, so lookups do not fall back to the database in
    normal operation. Dead revocation entries and expired refresh tokens are purged.
    """
    interval = tokens.settings.policy_poll_interval if memory else REDIS_COMPLETE_SECONDS / 2
    since_purge = PURGE_EVERY_SECONDS
    service = tokens.service
    while True:
        await asyncio.sleep(interval)
        since_purge += interval
        try:
            await service.revocations.warm()
            if since_purge >= PURGE_EVERY_SECONDS:
                since_purge = 0.0
                await service.revocations.purge()
                await service.refresh_tokens.purge(before=_days_ago(1))
                for purge in purges:
                    await purge()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("auth.housekeeping.failed", error=type(exc).__name__)


def _days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
