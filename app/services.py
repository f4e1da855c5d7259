"""The composition root: everything one running instance owns, built by `compose` in the
lifespan and closed there.

`Services` is frozen: every part is built, and wired to the others, before it exists.
Routes reach the parts through the narrow dependencies in `app.api.deps`; nothing here is a
module-level singleton, so several apps can live in one process (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from loguru import logger
from redis.asyncio.cluster import RedisCluster

from app.adapters.http.api_key import AdminApiKeyResolver
from app.adapters.http.bearer import BearerTokenResolver
from app.adapters.http.callers import Callers
from app.adapters.http.principal import PrincipalResolver
from app.adapters.http.writes import Writes
from app.adapters.redis.client import ClusterHealth, RedisClient, close_redis, make_redis
from app.adapters.redis.layer import CacheLayer, build_cache_layer
from app.administration.policies import PolicyAdministration
from app.administration.reload import PolicyReloader
from app.administration.users import UserAdministration
from app.audit.writer import AuditWriter
from app.config import Settings
from app.decisions.log import DecisionLog, DecisionLogConfig
from app.decisions.permissions import PermissionService
from app.decisions.service import DecisionService
from app.factories import rule_sources
from app.observability.health import DependencyMonitor
from app.observability.metrics import Metrics
from app.policy.engine import PolicyEngine
from app.policy.snapshot import PolicySnapshot
from app.policy.workspace import LintedLoader
from app.security.detection import Detector, Thresholds
from app.store.alerts import AuditWriter as AlertAuditWriter
from app.store.audit_log import AuditLog, AuditTrailStore
from app.store.audit_queries import AuditQueries
from app.store.database import Database
from app.store.entities import EntityStore
from app.store.idempotency import IdempotencyStore
from app.store.policy_changes import SqlPolicyStore
from app.store.refresh_tokens import RefreshTokenRepository
from app.store.revisions import DatabaseRevisionStore
from app.store.users import UserAdminRepository
from app.token_services import TokenComponents, build_token_components
from app.tokens.metrics import TokenMetrics
from app.tokens.scope_checks import ScopeChecks

Closer = Callable[[], Awaitable[None]]
RETENTION_EVERY_SECONDS = 3600.0
CLOSE_STEP_SECONDS = 3.0


class Lifecycle:
    """The cleanup of one instance, registered as its parts are built and started."""

    def __init__(self) -> None:
        self._closers: list[Closer] = []

    def on_close(self, closer: Closer) -> None:
        """Register cleanup; closers run in reverse order of registration."""
        self._closers.append(closer)

    async def close(self) -> None:
        """Run the closers; each gets `CLOSE_STEP_SECONDS` at most, so a dependency that
        hangs (a database that went away) cannot hold the shutdown past its timeout."""
        for closer in reversed(self._closers):
            try:
                async with asyncio.timeout(CLOSE_STEP_SECONDS):
                    await closer()
            except TimeoutError:
                logger.warning("shutdown.step_timed_out", step=getattr(closer, "__qualname__", "?"))
            except Exception:
                logger.exception("shutdown.step_failed", step=repr(closer))
        self._closers.clear()


@dataclass(frozen=True, eq=False)
class Services:
    settings: Settings
    metrics: Metrics
    db: Database
    engine: PolicyEngine
    decisions: DecisionService
    redis: RedisClient | None
    cache: CacheLayer  # tiers, cross-instance invalidation, warming
    permissions: PermissionService
    callers: Callers  # authentication methods, asked in order (app.adapters.http.callers)
    audit: AuditLog
    audit_queries: AuditQueries  # reading the audit trail (each query its own session)
    policy_admin: PolicyAdministration
    policy_reloader: PolicyReloader
    tokens: TokenComponents  # OAuth2 token service (app.token_services)
    scope_checks: ScopeChecks  # v2 decisions from a bearer token's scope
    users_admin: UserAdministration
    entities: EntityStore  # the entity store (policy information point)
    decision_log: DecisionLog  # writes only when OMS_AUTH_DECISION_LOG_ENABLED
    audit_writer: AuditWriter  # token, login and alert events, off the path
    detector: Detector  # login failure bursts, mass permission changes
    writes: Writes  # admin writes: shielded, Idempotency-Key replays
    monitor: DependencyMonitor  # database/Redis state for /readyz
    redis_cluster: ClusterHealth | None  # CLUSTER INFO, with a Redis Cluster
    lifecycle: Lifecycle

    def on_close(self, closer: Closer) -> None:
        """Register cleanup; closers run in reverse order of registration."""
        self.lifecycle.on_close(closer)

    async def close(self) -> None:
        await self.lifecycle.close()


def build_decision_log(settings: Settings, metrics: Metrics) -> DecisionLog:
    config = DecisionLogConfig(
        enabled=settings.decision_log_enabled,
        path=settings.decision_log_path,
        allow_sample_rate=settings.decision_log_allow_sample_rate,
        mask=settings.decision_log_mask_fields,
        queue_size=settings.decision_log_queue_size,
        recent=settings.decision_log_recent,
        push_url=settings.decision_log_push_url,
        push_buffer=settings.decision_log_push_buffer,
        push_batch=settings.decision_log_push_batch,
        flush_interval=settings.decision_log_flush_interval,
    )
    instance = f"{settings.service_name}@{socket.gethostname()}:{os.getpid()}"
    return DecisionLog(config, registry=metrics.registry, instance=instance)


async def compose(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    resolvers: Sequence[PrincipalResolver] = (),
) -> Services:
    """Build and wire everything one instance owns (no I/O; the audit writer, the decision
    log and audit retention start here, the rest in the lifespan). `resolvers`: more
    authentication methods, asked after the admin API key and bearer tokens."""
    metrics = metrics or Metrics()
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
    )
    audit = AuditLog()
    loader = LintedLoader(settings.policy_dir, rule_sources(settings, db))
    entities = EntityStore(db, audit)
    engine = PolicyEngine(loader, DatabaseRevisionStore(db), metrics=metrics, entities=entities)
    redis = make_redis(settings)
    cache = build_cache_layer(settings, engine, redis=redis, metrics=metrics)
    decision_log = build_decision_log(settings, metrics)
    logging_on = settings.decision_log_enabled
    decisions = DecisionService(
        engine,
        metrics=metrics,
        cache=cache.decisions,
        activity=cache.activity,
        sink=decision_log if logging_on else None,
    )
    lifecycle = Lifecycle()
    lifecycle.on_close(db.close)
    decision_log.start()
    lifecycle.on_close(decision_log.close)
    monitor = DependencyMonitor(interval=settings.health_check_interval)
    monitor.watch("database", db.ping)
    redis_cluster: ClusterHealth | None = None
    if isinstance(redis, RedisCluster):
        # A cluster is healthy when it says so (every slot served), not when one node pings.
        redis_cluster = ClusterHealth(redis)
        monitor.watch("redis", redis_cluster.check)
    elif redis is not None:
        monitor.watch("redis", redis.ping)
    if redis is not None:
        lifecycle.on_close(partial(close_redis, redis))
    # Stopped before Redis closes: a probe after the close would open a connection on the
    # closed client that nothing ever closes.
    lifecycle.on_close(monitor.stop)
    # The audit trail of token, login and alert events, and the detector that watches them.
    token_metrics = TokenMetrics(metrics.registry)
    writer = AuditWriter(
        AuditTrailStore(db, audit), capacity=settings.audit_queue_size, registry=metrics.registry
    )
    detector = Detector(writer, thresholds=thresholds(settings), alerts=token_metrics.alerts)
    tokens = build_token_components(
        settings,
        db=db,
        redis=redis,
        engine=engine,
        metrics=token_metrics,
        events=writer,
        observer=detector,
    )
    lifecycle.on_close(tokens.close)
    lifecycle.on_close(cache.close)
    engine.on_change(permission_change_watcher(engine, detector))
    writer.start()
    lifecycle.on_close(writer.close)  # before the database closes (closers run in reverse)
    if settings.audit_retention_days:
        lifecycle.on_close(start_retention(audit, db, settings.audit_retention_days))
    validator = tokens.service.validator
    policy_store = SqlPolicyStore(db, audit)
    return Services(
        settings=settings,
        metrics=metrics,
        db=db,
        engine=engine,
        decisions=decisions,
        redis=redis,
        cache=cache,
        permissions=cache.permissions,
        callers=Callers(
            resolvers=(
                AdminApiKeyResolver(settings.admin_api_key),
                BearerTokenResolver(validator),
                *resolvers,
            ),
            open=settings.decision_auth_mode == "open",
            engine=engine,
            limits=tokens.rate_limits,
        ),
        audit=audit,
        audit_queries=AuditQueries(db, audit),
        policy_admin=PolicyAdministration(
            store=policy_store, engine=engine, db_is_source="db" in settings.policy_source
        ),
        policy_reloader=PolicyReloader(engine=engine, store=policy_store),
        tokens=tokens,
        scope_checks=ScopeChecks(
            decisions,
            tokens.rate_limits,
            tokens.metrics,
            log=decision_log if logging_on else None,
        ),
        users_admin=UserAdministration(
            repo=UserAdminRepository(db),
            refresh_tokens=RefreshTokenRepository(db),
            engine=engine,
            hasher=tokens.hasher,
            revocations=tokens.service.revocations,
            guard=tokens.service.accounts.guard,
            unlock_audit=partial(AlertAuditWriter, db),
        ),
        entities=entities,
        decision_log=decision_log,
        audit_writer=writer,
        detector=detector,
        writes=Writes(IdempotencyStore(db, ttl_seconds=settings.idempotency_ttl)),
        monitor=monitor,
        redis_cluster=redis_cluster,
        lifecycle=lifecycle,
    )


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        login_failures_per_account=settings.alert_login_failures_per_account,
        login_failures_per_address=settings.alert_login_failures_per_address,
        login_window=settings.alert_login_window,
        permission_changes=settings.alert_permission_changes,
        permission_window=settings.alert_permission_window,
    )


def start_retention(audit: AuditLog, db: Database, days: int) -> Closer:
    """Purge audit events older than `days` every hour; returns the task's stop."""
    task = asyncio.create_task(_retention(audit, db, days))

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop


def permission_change_watcher(
    engine: PolicyEngine, detector: Detector
) -> Callable[[PolicySnapshot, str], Awaitable[None]]:
    """Counts changed rules between consecutive snapshots into the detector."""
    previous: list[PolicySnapshot | None] = [engine.snapshot if engine.loaded else None]

    async def on_change(snapshot: PolicySnapshot, trigger: str) -> None:
        before, previous[0] = previous[0], snapshot
        if before is None or before is snapshot or trigger == "startup":
            return
        changed = await asyncio.to_thread(
            lambda: len(before.rule_index.keys() ^ snapshot.rule_index.keys())
        )
        detector.permissions_changed(changed, revision=snapshot.revision, trigger=trigger)

    return on_change


async def _retention(audit: AuditLog, db: Database, days: int) -> None:
    while True:
        try:
            removed = await audit.purge(db, older_than_days=days)
            if removed:
                logger.info("audit.purged", removed=removed, retention_days=days)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("audit.purge_failed", error=str(exc))
        await asyncio.sleep(RETENTION_EVERY_SECONDS)
