"""v2 decisions: answered from the bearer token's scope where it settles the question."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.bearer import BearerClaims, TokensDep
from app.api.deps import DecisionsDep, ServicesDep
from app.api.openapi import error_responses
from app.api.routing import StrictJSONRoute
from app.api.schemas.tokens import ScopeCheckRequest, ScopeCheckResponse
from app.decisions.log import set_caller, set_kind
from app.decisions.service import new_decision_id
from app.errors import (
    AuthenticationFailed,
    DeviceMismatch,
    RateLimited,
    RequestInvalid,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
)
from app.policy.request import DecisionRequest
from app.tokens.checks import from_scope

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v2/authz", tags=["decisions"])


@router.post(
    "/check",
    response_model=ScopeCheckResponse,
    response_model_exclude_none=True,
    responses=error_responses(
        AuthenticationFailed,
        TokenExpired,
        TokenInvalid,
        TokenRevoked,
        DeviceMismatch,
        RequestInvalid,
        RateLimited,
    ),
    summary="May the bearer token's subject do `action` on `resource`?",
    description=(
        "An exact `resource:action` in the token's scope allows without asking the engine; "
        "a request no scope entry covers is denied without asking it; a request only a "
        "pattern scope covers, a v1 token (no scope) or a domain goes to the engine. "
        "`decided_by` says which path decided."
    ),
)
async def check(
    body: ScopeCheckRequest,
    claims: BearerClaims,
    tokens: TokensDep,
    decisions: DecisionsDep,
    services: ServicesDep,
) -> dict[str, Any]:
    await tokens.rate_limits.checks(caller=claims.subject, service=claims.is_client_token)
    verdict = from_scope(
        claims.scope, resource=body.resource, action=body.action, domain=body.domain
    )
    out: dict[str, Any] = {
        "subject": claims.subject,
        "decided_by": verdict.path,
        "reason": verdict.reason,
        "matched_scope": verdict.matched_scope,
    }
    if verdict.allowed is not None:
        out.update(allowed=verdict.allowed, decision_id=new_decision_id())
        if services.decision_log is not None and services.settings.decision_log_enabled:
            services.decision_log.decided_by_scope(
                decision_id=out["decision_id"],
                subject=claims.subject,
                resource=body.resource,
                action=body.action,
                domain=body.domain,
                allowed=verdict.allowed,
                matched_scope=verdict.matched_scope,
                revision=decisions.engine.revision if decisions.engine.loaded else None,
            )
    else:
        set_kind("v2")
        set_caller(claims.subject)
        request = DecisionRequest.of(claims.subject, body.resource, body.action, body.domain)
        result = await decisions.check(request)
        out.update(result.as_dict())
        out.pop("cached", None)
    tokens.metrics.scope_checks.labels(path=verdict.path, allowed=str(out["allowed"]).lower()).inc()
    return out
