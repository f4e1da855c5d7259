"""Everything one running instance owns, built in the lifespan and closed there.

Routes reach these through the `Annotated` dependencies in `app.api.deps`; nothing here is a
module-level singleton, so several apps can live in one process (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from loguru import logger
from redis.asyncio import Redis

from app.administration.policies import PolicyAdministration
from app.administration.reload import PolicyReloader
from app.api.writes import Writes
from app.audit.log import AuditLog
from app.cache.layer import CacheLayer, build_cache_layer
from app.config import Settings
from app.decisions.permissions import PermissionService
from app.decisions.service import DecisionService
from app.observability.health import DependencyMonitor
from app.observability.metrics import Metrics
from app.policy.engine import PolicyEngine
from app.policy.sources import FileRuleSource, RuleSource
from app.policy.workspace import LintedLoader
from app.security.api_key import AdminApiKeyResolver
from app.security.principal import PrincipalResolver
from app.store.database import Database
from app.store.idempotency import IdempotencyStore
from app.store.policy_rules import DatabaseRuleSource
from app.store.redis import close_redis, make_redis
from app.store.revisions import DatabaseRevisionStore
from app.token_services import TokenComponents, install_tokens

Closer = Callable[[], Awaitable[None]]
CLOSE_STEP_SECONDS = 3.0


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    db: Database
    engine: PolicyEngine
    decisions: DecisionService
    redis: Redis | None = None
    cache: CacheLayer | None = None  # tiers, cross-instance invalidation, warming
    permissions: PermissionService | None = None
    # Authentication methods, asked in order (see app.security.principal).
    principal_resolvers: list[PrincipalResolver] = field(default_factory=list)
    audit: AuditLog = field(default_factory=AuditLog)
    policy_admin: PolicyAdministration = field(init=False)
    policy_reloader: PolicyReloader = field(init=False)
    tokens: TokenComponents | None = None  # OAuth2 token service (app.token_services)
    writes: Writes = field(init=False)  # admin writes: shielded, Idempotency-Key replays
    monitor: DependencyMonitor = field(init=False)  # database/Redis state for /readyz
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


async def build_services(settings: Settings, *, metrics: Metrics | None = None) -> Services:
    metrics = metrics or Metrics()
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
    )
    loader = LintedLoader(settings.policy_dir, rule_sources(settings, db))
    engine = PolicyEngine(loader, DatabaseRevisionStore(db), metrics=metrics)
    redis = make_redis(settings)
    cache = build_cache_layer(settings, engine, redis=redis, metrics=metrics)
    decisions = DecisionService(
        engine, metrics=metrics, cache=cache.decisions, activity=cache.activity
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
    )
    services.on_close(db.close)
    services.policy_admin = PolicyAdministration(
        db=db, engine=engine, audit=services.audit, db_is_source="db" in settings.policy_source
    )
    services.policy_reloader = PolicyReloader(engine=engine, db=db, audit=services.audit)
    services.writes = Writes(IdempotencyStore(db, ttl_seconds=settings.idempotency_ttl))
    services.monitor = DependencyMonitor(interval=settings.health_check_interval)
    services.monitor.watch("database", db.ping)
    if redis is not None:
        services.monitor.watch("redis", redis.ping)
    services.on_close(services.monitor.stop)
    services.principal_resolvers.append(AdminApiKeyResolver(settings.admin_api_key))
    if redis is not None:
        services.on_close(partial(close_redis, redis))
    install_tokens(services)
    services.on_close(cache.close)
    return services
