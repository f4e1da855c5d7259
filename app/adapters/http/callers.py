"""Who calls, and what their checks cost: the authentication methods of one instance.

Built once by the composition root; the HTTP layer (`app.api.principals`) asks it who the
caller is, charges the caller's checks through it, and asks whether the caller holds a scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from app.adapters.http.principal import PrincipalResolver
from app.policy.engine import PolicyEngine
from app.security.principal import Alongside, Principal
from app.security.rate_limits import RateLimits
from app.tokens.scopes import holds_scope


@dataclass(frozen=True)
class Callers:
    resolvers: tuple[PrincipalResolver, ...]  # asked in order; the first answer counts
    open: bool  # OMS_AUTH_DECISION_AUTH=open: decision callers need no credentials
    engine: PolicyEngine  # whether a bearer caller holds a permission (`holder`)
    limits: RateLimits | None = None  # the check limit; None: checks are not charged

    async def resolve(
        self, connection: HTTPConnection, *, alongside: Alongside | None = None
    ) -> Principal | None:
        for resolver in self.resolvers:
            if alongside is None:
                principal = await resolver.resolve(connection)
            else:
                principal = await resolver.resolve(connection, alongside=alongside)
            if principal is not None:
                return principal
        return None

    async def charge(self, caller: Principal | None, count: int) -> None:
        """Count `count` checks against the caller's check limit (authenticated callers):
        `rate_limit_check_service` for services, `rate_limit_check` for end users."""
        if caller is not None and self.limits is not None and count > 0:
            await self.limits.checks(caller=caller.subject, count=count, service=caller.is_service)

    def holder(self, principal: Principal) -> Callable[[str], bool]:
        """Whether `principal` holds a scope (`holds_scope`), asked of the served policy."""
        return lambda scope: holds_scope(principal, scope, self.engine.snapshot)
