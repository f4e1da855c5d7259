"""Authentication dependencies: routes are authenticated unless they say otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from app.api.deps import ServicesDep
from app.errors import AuthenticationFailed, PermissionDenied
from app.observability.decision_log import set_caller
from app.security.principal import Alongside, Principal
from app.services import Services


async def resolve_principal(
    services: Services, connection: HTTPConnection, *, alongside: Alongside | None = None
) -> Principal | None:
    for resolver in services.principal_resolvers:
        if alongside is None:
            principal = await resolver.resolve(connection)
        else:
            principal = await resolver.resolve(connection, alongside=alongside)
        if principal is not None:
            return principal
    return None


async def optional_principal(request: Request, services: ServicesDep) -> Principal | None:
    return await resolve_principal(services, request)


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


async def admit_decision_caller(
    services: Services, connection: HTTPConnection, subjects: Sequence[str]
) -> Principal | None:
    """Who asks for decisions about `subjects`, and may they: the one place for that rule.

    Open mode (`OMS_AUTH_DECISION_AUTH=open`): nobody in particular. Token mode: an
    authenticated principal (401 otherwise) whose checks (one per subject) are charged to its
    `rate_limit_check`; the charge runs alongside the token's revocation lookup, so both cost
    one Redis round trip at most (none while `OMS_AUTH_CALLER_CACHE_SECONDS` covers them).
    Used by the documented routes and the fast lane alike.
    """
    if services.settings.decision_auth_mode == "open":
        return None
    count = len(subjects)
    # The scope's state dict itself: Starlette's `State` wrapper costs more than this whole
    # function when the attribute is missing (it raises and catches an AttributeError).
    state: dict[str, Any] = connection.scope.setdefault("state", {})
    admitted: tuple[Principal, int] | None = state.get("decision_caller")
    if admitted is not None and admitted[1] >= count:
        set_caller(admitted[0].subject)
        return admitted[0]  # this request was admitted already (a fast-lane fallback)

    async def charge(principal: Principal) -> None:
        await charge_checks(services, principal, count)

    caller = await require_principal(
        await resolve_principal(services, connection, alongside=charge)
    )
    state["decision_caller"] = (caller, count)
    set_caller(caller.subject)
    return caller


async def decision_caller(request: Request, services: ServicesDep) -> Principal | None:
    """Who asks for decisions, for routes that are not checks (nothing charged)."""
    return await admit_decision_caller(services, request, ())


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
