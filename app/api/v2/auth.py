"""Login API v2: the access token's `scope` lists what the user may do."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.bearer import IssuanceDep, login_admission
from app.api.fastlane import FastRoute
from app.api.openapi import error_responses
from app.api.routing import StrictJSONRoute
from app.api.schemas.tokens import LoginV2Request, TokenResponse
from app.errors import (
    AuthenticationFailed,
    InsufficientScope,
    Overloaded,
    RateLimited,
    RequestInvalid,
)
from app.tokens.scopes import parse_scope

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v2/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=error_responses(
        AuthenticationFailed, InsufficientScope, RateLimited, RequestInvalid, Overloaded
    ),
    summary="Log in; the token carries the user's permissions as `resource:action` scopes",
)
async def login(body: LoginV2Request, issue: IssuanceDep) -> dict[str, Any]:
    try:
        requested = parse_scope(body.scope)
    except ValueError as exc:
        raise RequestInvalid(
            "Invalid scope", details={"fields": [{"field": "scope", "message": str(exc)}]}
        ) from None
    return await issue.login(body.username, body.password, version="v2", requested=requested)


def fast_routes() -> list[FastRoute]:
    return [login_admission("/api/v2/auth/login", LoginV2Request)]
