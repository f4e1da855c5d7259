"""Authentication dependencies: routes are authenticated unless they say otherwise."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.deps import ServicesDep
from app.errors import AuthenticationFailed, PermissionDenied
from app.security.principal import Principal
from app.services import Services


async def optional_principal(request: Request, services: ServicesDep) -> Principal | None:
    for resolver in services.principal_resolvers:
        principal = await resolver.resolve(request)
        if principal is not None:
            return principal
    return None


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise AuthenticationFailed(
            "Authentication required", headers={"WWW-Authenticate": 'Bearer realm="oms-auth"'}
        )
    return principal


async def require_policy_admin(
    principal: Annotated[Principal, Depends(require_principal)],
) -> Principal:
    if not principal.may_administer_policies:
        raise PermissionDenied(
            "Policy administration needs an admin or the authz:policies:write scope",
            details={"required_scope": "authz:policies:write"},
        )
    return principal


async def decision_caller(request: Request, services: ServicesDep) -> Principal | None:
    """Who asks for decisions: nobody in particular when the decision API is open, an
    authenticated principal (401 otherwise) when `OMS_AUTH_DECISION_AUTH=token`."""
    if services.settings.decision_auth_mode == "open":
        return None
    return await require_principal(await optional_principal(request, services))


async def charge_checks(services: Services, caller: Principal | None, count: int) -> None:
    """Count `count` checks against the caller's check limit (authenticated callers):
    `rate_limit_check_service` for services, `rate_limit_check` for end users."""
    if caller is not None and services.tokens is not None and count > 0:
        await services.tokens.rate_limits.checks(
            caller=caller.subject, count=count, service=caller.is_service
        )


DecisionCaller = Annotated[Principal | None, Depends(decision_caller)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
PolicyAdmin = Annotated[Principal, Depends(require_policy_admin)]
