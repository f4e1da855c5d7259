"""FastAPI dependencies as `Annotated` aliases, so route signatures read as prose.

The only module of the HTTP layer that reads the composition root (`app.services.Services`):
each provider hands a route the one part it needs, typed, and routes never see the whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from weakref import WeakKeyDictionary

from fastapi import Depends, Request

from app.administration.policies import PolicyAdministration
from app.administration.reload import PolicyReloader
from app.administration.users import UserAdministration
from app.api.writes import Writes
from app.audit.queries import AuditQueries
from app.cache.layer import CacheLayer
from app.config import Settings
from app.decisions.permissions import PermissionService
from app.decisions.service import DecisionService
from app.errors import DependencyUnavailable
from app.observability.decision_log import DecisionLog
from app.observability.health import DependencyMonitor
from app.policy.engine import PolicyEngine
from app.security.callers import Callers
from app.services import Services
from app.store.entities import EntityStore
from app.store.users import UserRepository
from app.tokens.keys import KeyRing
from app.tokens.oauth.http import OAuthHTTP
from app.tokens.scope_checks import ScopeChecks
from app.tokens.service import TokenService
from app.tokens.validator import TokenValidator


async def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise DependencyUnavailable("service is starting")
    return services


_Services = Annotated[Services, Depends(get_services)]


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(services: _Services) -> PolicyEngine:
    return services.engine


async def get_decisions(services: _Services) -> DecisionService:
    return services.decisions


async def get_callers(services: _Services) -> Callers:
    return services.callers


async def get_permissions(services: _Services) -> PermissionService:
    return services.permissions


async def get_policy_admin(services: _Services) -> PolicyAdministration:
    return services.policy_admin


async def get_reloader(services: _Services) -> PolicyReloader:
    return services.policy_reloader


async def get_writes(services: _Services) -> Writes:
    return services.writes


async def get_users_admin(services: _Services) -> UserAdministration:
    return services.users_admin


async def get_entities(services: _Services) -> EntityStore:
    return services.entities


async def get_audit_queries(services: _Services) -> AuditQueries:
    return services.audit_queries


async def get_decision_log(services: _Services) -> DecisionLog | None:
    """The decision log, or None while decision logging is off."""
    return services.decision_log if services.settings.decision_log_enabled else None


async def get_monitor(services: _Services) -> DependencyMonitor:
    return services.monitor


async def get_cache(services: _Services) -> CacheLayer:
    return services.cache


async def get_token_service(services: _Services) -> TokenService:
    return services.tokens.service


async def get_validator(services: _Services) -> TokenValidator:
    return services.tokens.service.validator


async def get_keys(services: _Services) -> KeyRing:
    return services.tokens.keys


async def get_oauth(services: _Services) -> OAuthHTTP:
    return services.tokens.oauth


async def get_users(services: _Services) -> UserRepository:
    return services.tokens.users


async def get_scope_checks(services: _Services) -> ScopeChecks:
    return services.scope_checks


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[PolicyEngine, Depends(get_engine)]
DecisionsDep = Annotated[DecisionService, Depends(get_decisions)]
CallersDep = Annotated[Callers, Depends(get_callers)]
PermissionsDep = Annotated[PermissionService, Depends(get_permissions)]
PolicyAdministrationDep = Annotated[PolicyAdministration, Depends(get_policy_admin)]
ReloaderDep = Annotated[PolicyReloader, Depends(get_reloader)]
WritesDep = Annotated[Writes, Depends(get_writes)]
UsersAdminDep = Annotated[UserAdministration, Depends(get_users_admin)]
EntitiesDep = Annotated[EntityStore, Depends(get_entities)]
AuditQueriesDep = Annotated[AuditQueries, Depends(get_audit_queries)]
DecisionLogDep = Annotated[DecisionLog | None, Depends(get_decision_log)]
MonitorDep = Annotated[DependencyMonitor, Depends(get_monitor)]
CacheDep = Annotated[CacheLayer, Depends(get_cache)]
TokenServiceDep = Annotated[TokenService, Depends(get_token_service)]
ValidatorDep = Annotated[TokenValidator, Depends(get_validator)]
KeysDep = Annotated[KeyRing, Depends(get_keys)]
OAuthDep = Annotated[OAuthHTTP, Depends(get_oauth)]
UsersDep = Annotated[UserRepository, Depends(get_users)]
ScopeChecksDep = Annotated[ScopeChecks, Depends(get_scope_checks)]


# -- the fast lane (app.api.fastlane) resolves no dependencies: its handlers get these ------
@dataclass(frozen=True)
class FastPorts:
    callers: Callers
    decisions: DecisionService
    validator: TokenValidator
    authzen_item_context: bool  # OMS_AUTH_AUTHZEN_ITEM_CONTEXT


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
        )
    return ports
