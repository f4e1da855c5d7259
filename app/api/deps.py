"""FastAPI dependencies as `Annotated` aliases, so route signatures read as prose.

The only module of the HTTP layer that reads the composition root (`app.services.Services`):
each provider hands a route the one part it needs, typed, and routes never see the whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar
from weakref import WeakKeyDictionary

from fastapi import Depends, Request

from app.adapters.http.callers import Callers
from app.adapters.http.oauth import OAuthHTTP
from app.adapters.http.writes import Writes
from app.adapters.redis.client import ClusterHealth
from app.adapters.redis.layer import CacheLayer
from app.administration.policies import PolicyAdministration
from app.administration.reload import PolicyReloader
from app.administration.users import UserAdministration
from app.config import Settings
from app.decisions.log import DecisionLog
from app.decisions.permissions import PermissionService
from app.decisions.service import DecisionService
from app.errors import DependencyUnavailable
from app.observability.health import DependencyMonitor
from app.observability.metrics import Metrics
from app.policy.engine import PolicyEngine
from app.services import Services
from app.store.audit_queries import AuditQueries
from app.store.entities import EntityStore
from app.store.users import UserRepository
from app.tokens.keys import KeyRing
from app.tokens.scope_checks import ScopeChecks
from app.tokens.service import TokenService
from app.tokens.validator import TokenValidator

T = TypeVar("T")


async def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise DependencyUnavailable("service is starting")
    return services


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    """The app's metrics (made with the app, so `/metrics` answers before the instance
    has started, and after a failed start)."""
    metrics: Metrics = request.app.state.metrics
    return metrics


def part(pick: Callable[[Services], T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency that hands a route one part of the running instance (503 while the
    instance starts)."""

    async def provide(request: Request) -> T:
        return pick(await get_services(request))

    return provide


def _decision_log(services: Services) -> DecisionLog | None:
    """The decision log, or None while decision logging is off."""
    return services.decision_log if services.settings.decision_log_enabled else None


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
EngineDep = Annotated[PolicyEngine, Depends(part(lambda s: s.engine))]
DecisionsDep = Annotated[DecisionService, Depends(part(lambda s: s.decisions))]
CallersDep = Annotated[Callers, Depends(part(lambda s: s.callers))]
PermissionsDep = Annotated[PermissionService, Depends(part(lambda s: s.permissions))]
PolicyAdministrationDep = Annotated[PolicyAdministration, Depends(part(lambda s: s.policy_admin))]
ReloaderDep = Annotated[PolicyReloader, Depends(part(lambda s: s.policy_reloader))]
WritesDep = Annotated[Writes, Depends(part(lambda s: s.writes))]
UsersAdminDep = Annotated[UserAdministration, Depends(part(lambda s: s.users_admin))]
EntitiesDep = Annotated[EntityStore, Depends(part(lambda s: s.entities))]
AuditQueriesDep = Annotated[AuditQueries, Depends(part(lambda s: s.audit_queries))]
DecisionLogDep = Annotated[DecisionLog | None, Depends(part(_decision_log))]
MonitorDep = Annotated[DependencyMonitor, Depends(part(lambda s: s.monitor))]
CacheDep = Annotated[CacheLayer, Depends(part(lambda s: s.cache))]
RedisClusterDep = Annotated[ClusterHealth | None, Depends(part(lambda s: s.redis_cluster))]
TokenServiceDep = Annotated[TokenService, Depends(part(lambda s: s.tokens.service))]
ValidatorDep = Annotated[TokenValidator, Depends(part(lambda s: s.tokens.service.validator))]
KeysDep = Annotated[KeyRing, Depends(part(lambda s: s.tokens.keys))]
OAuthDep = Annotated[OAuthHTTP, Depends(part(lambda s: s.tokens.oauth))]
UsersDep = Annotated[UserRepository, Depends(part(lambda s: s.tokens.users))]
ScopeChecksDep = Annotated[ScopeChecks, Depends(part(lambda s: s.scope_checks))]


# -- the fast lane (app.api.fastlane) resolves no dependencies: its handlers get these ------
class LoginAdmission(Protocol):
    """The hashing pool's admission control, as the login lane sees it."""

    def would_refuse(self) -> bool: ...

    def shed(self) -> None:
        """Raise `Overloaded` (counted as a refusal) if a login arriving now is refused."""


@dataclass(frozen=True)
class FastPorts:
    callers: Callers
    decisions: DecisionService
    validator: TokenValidator
    authzen_item_context: bool  # OMS_AUTH_AUTHZEN_ITEM_CONTEXT
    logins: LoginAdmission  # the hashing pool's admission control


_FAST_PORTS: WeakKeyDictionary[Services, FastPorts] = WeakKeyDictionary()


def fast_ports(app: Any) -> FastPorts | None:
    """The fast lane's parts of a running app; None while it starts (built once per start)."""
    services: Services | None = getattr(app.state, "services", None)
    if services is None:
        return None
    ports = _FAST_PORTS.get(services)
    if ports is None:
        ports = _FAST_PORTS[services] = FastPorts(
            callers=services.callers,
            decisions=services.decisions,
            validator=services.tokens.service.validator,
            authzen_item_context=services.settings.authzen_item_context,
            logins=services.tokens.hasher,
        )
    return ports
