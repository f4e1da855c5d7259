"""Authentication dependencies: routes are authenticated unless they say otherwise."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.deps import ServicesDep
from app.errors import AuthenticationFailed, PermissionDenied
from app.security.principal import Principal


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


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
PolicyAdmin = Annotated[Principal, Depends(require_policy_admin)]
