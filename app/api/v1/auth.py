"""Login API v1: tokens without `scope` (resource servers ask the decision API per request)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response as StarletteResponse

from app.api.bearer import BearerClaims, ClientIP, IssuanceDep, login_admission
from app.api.deps import EngineDep, TokenServiceDep, UsersDep
from app.api.fastlane import FastRoute
from app.api.openapi import error_responses
from app.api.routing import StrictJSONRoute
from app.api.schemas.tokens import (
    LoginRequest,
    LogoutRequest,
    MeResponse,
    RefreshRequest,
    TokenResponse,
)
from app.errors import (
    AuthenticationFailed,
    DeviceMismatch,
    InsufficientScope,
    Overloaded,
    RateLimited,
    RequestInvalid,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
)

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/auth", tags=["auth"])

TOKEN_ERRORS = (TokenExpired, TokenInvalid, TokenRevoked, DeviceMismatch)


@router.post(
    "/login",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=error_responses(AuthenticationFailed, RateLimited, RequestInvalid, Overloaded),
    summary="Log in with username and password (v1 token: no scope claim)",
)
async def login(body: LoginRequest, issue: IssuanceDep) -> dict[str, Any]:
    return await issue.login(body.username, body.password, version="v1", requested=None)


@router.post(
    "/refresh",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=error_responses(*TOKEN_ERRORS, InsufficientScope, RateLimited, RequestInvalid),
    summary="Exchange a refresh token for new tokens (the refresh token rotates)",
)
async def refresh(body: RefreshRequest, issue: IssuanceDep) -> dict[str, Any]:
    return await issue.refresh(body.refresh_token)


@router.post(
    "/logout",
    status_code=204,
    response_class=StarletteResponse,
    responses=error_responses(AuthenticationFailed, *TOKEN_ERRORS),
    summary="Revoke the presented access token and its session (refresh tokens included)",
)
async def logout(
    claims: BearerClaims,
    tokens: TokenServiceDep,
    ip: ClientIP,
    body: LogoutRequest | None = None,
) -> StarletteResponse:
    await tokens.logout(claims, refresh_token=body.refresh_token if body else None, ip=ip)
    return StarletteResponse(status_code=204)


@router.get(
    "/me",
    response_model=MeResponse,
    responses=error_responses(AuthenticationFailed, *TOKEN_ERRORS),
    summary="Who the presented access token belongs to",
)
async def me(claims: BearerClaims, users: UsersDep, engine: EngineDep) -> dict[str, Any]:
    user = None if claims.is_client_token else await users.by_username(claims.subject)
    snapshot = engine.snapshot
    return {
        "subject": claims.subject,
        "user_id": user.id if user else None,
        "is_admin": bool(user.is_admin) if user else claims.is_admin,
        "roles": snapshot.implicit_roles(claims.subject),
        "token": {
            "jti": claims.jti,
            "client_id": claims.client_id,
            "version": claims.version,
            "scope": list(claims.scope) if claims.scope is not None else None,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "device_bound": claims.fingerprint_hash is not None,
        },
    }


def fast_routes() -> list[FastRoute]:
    return [login_admission("/api/v1/auth/login", LoginRequest)]
