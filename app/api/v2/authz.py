"""v2 decisions: answered from the bearer token's scope where it settles the question."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.bearer import BearerClaims
from app.api.deps import ScopeChecksDep
from app.api.openapi import error_responses
from app.api.routing import StrictJSONRoute
from app.api.schemas.tokens import ScopeCheckRequest, ScopeCheckResponse
from app.errors import (
    AuthenticationFailed,
    DeviceMismatch,
    RateLimited,
    RequestInvalid,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
)

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
    body: ScopeCheckRequest, claims: BearerClaims, checks: ScopeChecksDep
) -> dict[str, Any]:
    return await checks.check(
        claims, resource=body.resource, action=body.action, domain=body.domain
    )
