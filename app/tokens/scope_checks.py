"""v2 decisions for a bearer token: its scope settles what it can (`app.tokens.checks`), the
engine the rest; each check is charged to the caller's check limit, counted in the token
metrics and, when the scope decided, written to the decision log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.decisions.log import DecisionLog, set_caller, set_kind
from app.decisions.service import DecisionService, new_decision_id
from app.policy.request import DecisionRequest
from app.security.rate_limits import RateLimits
from app.tokens.checks import from_scope
from app.tokens.claims import AccessClaims
from app.tokens.metrics import TokenMetrics


@dataclass(frozen=True)
class ScopeChecks:
    decisions: DecisionService
    limits: RateLimits
    metrics: TokenMetrics
    log: DecisionLog | None = None  # None: decision logging is off

    async def check(
        self, claims: AccessClaims, *, resource: str, action: str, domain: str | None
    ) -> dict[str, Any]:
        """The answer of `POST /api/v2/authz/check`: `decided_by` names the path taken."""
        await self.limits.checks(caller=claims.subject, service=claims.is_client_token)
        verdict = from_scope(claims.scope, resource=resource, action=action, domain=domain)
        out: dict[str, Any] = {
            "subject": claims.subject,
            "decided_by": verdict.path,
            "reason": verdict.reason,
            "matched_scope": verdict.matched_scope,
        }
        if verdict.allowed is not None:
            out.update(allowed=verdict.allowed, decision_id=new_decision_id())
            if self.log is not None:
                engine = self.decisions.engine
                self.log.decided_by_scope(
                    decision_id=out["decision_id"],
                    subject=claims.subject,
                    resource=resource,
                    action=action,
                    domain=domain,
                    allowed=verdict.allowed,
                    matched_scope=verdict.matched_scope,
                    revision=engine.revision if engine.loaded else None,
                )
        else:
            set_kind("v2")
            set_caller(claims.subject)
            request = DecisionRequest.of(claims.subject, resource, action, domain)
            result = await self.decisions.check(request)
            out.update(result.as_dict())
            out.pop("cached", None)
        allowed = str(out["allowed"]).lower()
        self.metrics.scope_checks.labels(path=verdict.path, allowed=allowed).inc()
        return out
