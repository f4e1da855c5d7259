"""Everything one running instance owns, built in the lifespan and closed there.

Routes reach these through the `Annotated` dependencies in `app.api.deps`; nothing here is a
module-level singleton, so several apps can live in one process (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from loguru import logger
from redis.asyncio.cluster import RedisCluster

from app.administration.policies import PolicyAdministration
from app.administration.reload import PolicyReloader
from app.api.writes import Writes
from app.audit.log import AuditLog
from app.audit.writer import AuditWriter
from app.cache.layer import CacheLayer, build_cache_layer
from app.config import Settings
from app.decisions.permissions import PermissionService
from app.decisions.service import DecisionService
from app.observability.decision_log import DecisionLog, DecisionLogConfig
from app.observability.health import DependencyMonitor
from app.observability.metrics import Metrics
from app.policy.engine import PolicyEngine
from app.policy.snapshot import PolicySnapshot
from app.policy.sources import FileRuleSource, RuleSource
from app.policy.workspace import LintedLoader
from app.security.api_key import AdminApiKeyResolver
from app.security.detection import Detector, Thresholds
from app.security.principal import PrincipalResolver
from app.store.database import Database
from app.store.entities import EntityStore
from app.store.idempotency import IdempotencyStore
from app.store.policy_rules import DatabaseRuleSource
from app.store.redis import ClusterHealth, RedisClient, close_redis, make_redis
from app.store.revisions import DatabaseRevisionStore
from app.token_services import TokenComponents, install_tokens

Closer = Callable[[], Awaitable[None]]
RETENTION_EVERY_SECONDS = 3600.0
CLOSE_STEP_SECONDS = 3.0


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    db: Database
    engine: PolicyEngine
    decisions: DecisionService
    redis: RedisClient | None = None
    cache: CacheLayer | None = None  # tiers, cross-instance invalidation, warming
    permissions: PermissionService | None = None
    # Authentication methods, asked in order (see app.security.principal).
    principal_resolvers: list[PrincipalResolver] = field(default_factory=list)
    audit: AuditLog = field(default_factory=AuditLog)
    policy_admin: PolicyAdministration = field(init=False)
    policy_reloader: PolicyReloader = field(init=False)
    tokens: TokenComponents | None = None  # OAuth2 token service (app.token_services)
    entities: EntityStore | None = None  # the entity store (policy information point)
    decision_log: DecisionLog | None = None  # set when OMS_AUTH_DECISION_LOG_ENABLED
    audit_writer: AuditWriter | None = None  # token, login and alert events, off the path
    detector: Detector | None = None  # login failure bursts, mass permission changes
    writes: Writes = field(init=False)  # admin writes: shielded, Idempotency-Key replays
    monitor: DependencyMonitor = field(init=False)  # database/Redis state for /readyz
    redis_cluster: ClusterHealth | None = None  # CLUSTER INFO, with a Redis Cluster
    _closers: list[Closer] = field(default_factory=list)

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


def rule_sources(settings: Settings, db: Database) -> list[RuleSource]:
    sources: list[RuleSource] = []
    if "files" in settings.policy_source:
        sources.append(FileRuleSource(settings.policy_dir))
    if "db" in settings.policy_source:
        sources.append(DatabaseRuleSource(db.sync_engine))
    return sources


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


async def build_services(settings: Settings, *, metrics: Metrics | None = None) -> Services:
    metrics = metrics or Metrics()
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
    )
    loader = LintedLoader(settings.policy_dir, rule_sources(settings, db))
    entities = EntityStore(db)  # its audit log is set below, with the services'
    engine = PolicyEngine(loader, DatabaseRevisionStore(db), metrics=metrics, entities=entities)
    redis = make_redis(settings)
    cache = build_cache_layer(settings, engine, redis=redis, metrics=metrics)
    decision_log = build_decision_log(settings, metrics)
    decisions = DecisionService(
        engine,
        metrics=metrics,
        cache=cache.decisions,
        activity=cache.activity,
        sink=decision_log if settings.decision_log_enabled else None,
    )
    services = Services(
        settings,
        metrics,
        db,
        engine,
        decisions,
        redis=redis,
        cache=cache,
        permissions=cache.permissions,
        entities=entities,
        decision_log=decision_log,
    )
    services.on_close(db.close)
    decision_log.start()
    services.on_close(decision_log.close)
    services.policy_admin = PolicyAdministration(
        db=db, engine=engine, audit=services.audit, db_is_source="db" in settings.policy_source
    )
    services.policy_reloader = PolicyReloader(engine=engine, db=db, audit=services.audit)
    entities.audit = services.audit
    services.writes = Writes(IdempotencyStore(db, ttl_seconds=settings.idempotency_ttl))
    services.monitor = DependencyMonitor(interval=settings.health_check_interval)
    services.monitor.watch("database", db.ping)
    if isinstance(redis, RedisCluster):
        # A cluster is healthy when it says so (every slot served), not when one node pings.
        services.redis_cluster = ClusterHealth(redis)
        services.monitor.watch("redis", services.redis_cluster.check)
    elif redis is not None:
        services.monitor.watch("redis", redis.ping)
    services.on_close(services.monitor.stop)
    services.principal_resolvers.append(AdminApiKeyResolver(settings.admin_api_key))
    if redis is not None:
        services.on_close(partial(close_redis, redis))
    install_tokens(services)
    services.on_close(cache.close)
    install_audit_trail(services)
    return services


def install_audit_trail(services: Services) -> None:
    """The background audit writer, the detector, and the hooks that feed them."""
    settings = services.settings
    writer = AuditWriter(
        services.db,
        services.audit,
        capacity=settings.audit_queue_size,
        registry=services.metrics.registry,
    )
    tokens = services.tokens
    detector = Detector(
        writer,
        thresholds=Thresholds(
            login_failures_per_account=settings.alert_login_failures_per_account,
            login_failures_per_address=settings.alert_login_failures_per_address,
            login_window=settings.alert_login_window,
            permission_changes=settings.alert_permission_changes,
            permission_window=settings.alert_permission_window,
        ),
        alerts=tokens.metrics.alerts if tokens is not None else None,
    )
    services.audit_writer, services.detector = writer, detector
    if tokens is not None:
        service = tokens.service
        service.events = service.issuer.events = service.cutoff.events = writer
        service.accounts.events = writer
        service.accounts.observer = detector
    services.engine.on_change(permission_change_watcher(services.engine, detector))
    writer.start()
    services.on_close(writer.close)  # before the database closes (closers run in reverse)
    if settings.audit_retention_days:
        task = asyncio.create_task(
            _retention(services.audit, services.db, settings.audit_retention_days)
        )

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        services.on_close(stop)


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
