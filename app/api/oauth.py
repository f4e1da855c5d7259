"""OAuth 2.0 endpoints (RFC 6749 token, RFC 7009 revocation, RFC 7662 introspection), the
JWKS and RFC 8414 metadata. Errors here use RFC 6749 JSON, as OAuth clients expect."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from app.api.deps import KeysDep, OAuthDep, SettingsDep
from app.api.routing import StrictJSONRoute
from app.tokens.metadata import server_metadata

router = APIRouter(route_class=StrictJSONRoute, tags=["oauth"])

_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "grant_type": {
                            "type": "string",
                            "enum": ["password", "client_credentials", "refresh_token"],
                        },
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                        "refresh_token": {"type": "string"},
                        "scope": {"type": "string"},
                        "token": {"type": "string"},
                        "token_type_hint": {"type": "string"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                    },
                }
            }
        },
    }
}
_OAUTH_ERROR = {
    "description": "RFC 6749 error JSON",
    "content": {
        "application/json": {
            "examples": {
                "invalid_grant": {
                    "value": {
                        "error": "invalid_grant",
                        "error_description": "The refresh token was already used",
                    }
                },
                "invalid_client": {
                    "value": {
                        "error": "invalid_client",
                        "error_description": "Client authentication failed",
                    }
                },
            }
        }
    },
}


@router.post(
    "/oauth/token",
    summary="Token endpoint: password, client_credentials and refresh_token grants",
    openapi_extra=_FORM_BODY,
    responses={400: _OAUTH_ERROR, 401: _OAUTH_ERROR, 429: _OAUTH_ERROR},
)
async def token(request: Request, oauth: OAuthDep) -> Response:
    return await oauth.token(request)


@router.post(
    "/oauth/revoke",
    summary="RFC 7009 revocation (200 even for unknown tokens); client authentication",
    openapi_extra=_FORM_BODY,
    responses={400: _OAUTH_ERROR, 401: _OAUTH_ERROR},
)
async def revoke(request: Request, oauth: OAuthDep) -> Response:
    return await oauth.revocation(request)


@router.post(
    "/oauth/introspect",
    summary="RFC 7662 introspection; client authentication",
    openapi_extra=_FORM_BODY,
    responses={400: _OAUTH_ERROR, 401: _OAUTH_ERROR},
)
async def introspect(request: Request, oauth: OAuthDep) -> Response:
    return await oauth.introspection(request)


class JWKSResponse(JSONResponse):
    media_type = "application/jwk-set+json"


@router.get(
    "/.well-known/jwks.json",
    summary="Public signing keys: current and previous",
    response_class=JWKSResponse,
)
async def jwks(keys: KeysDep) -> Response:
    return JWKSResponse(await keys.jwks(), headers={"Cache-Control": "public, max-age=60"})


@router.get(
    "/.well-known/oauth-authorization-server", summary="RFC 8414 authorization server metadata"
)
async def metadata(settings: SettingsDep) -> dict[str, Any]:
    return server_metadata(settings.issuer, signing_alg=settings.signing_alg)
