"""JSON responses rendered with orjson (several times faster than the stdlib encoder), and
the README's error envelope that every failure on `/api/*` is answered with.

Domain errors know nothing of HTTP: `HTTP_STATUS` gives each kind its status, and an error's
typed data its headers (`retry_after` -> Retry-After, `challenge` -> WWW-Authenticate). This
is the only place the two meet (the routes, the fast lane and the admin-write adapter use
it; `app.api.errors` installs the exception handlers)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

from app.errors import (
    AuthenticationFailed,
    AuthzError,
    BatchTooLarge,
    Challenge,
    Conflict,
    Forbidden,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
)
from app.observability.logging import request_id_var


class FastJSONResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


HTTP_STATUS: dict[type[AuthzError], int] = {
    AuthzError: 500,
    InvalidRequest: 422,
    BatchTooLarge: 413,
    PayloadTooLarge: 413,
    MethodNotAllowed: 405,
    AuthenticationFailed: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    Unavailable: 503,
    InternalError: 500,
}
"""Each kind's HTTP status; an error takes the entry of its nearest class listed here."""


_RESOLVED: dict[type[AuthzError], int] = {}


def http_status(error: AuthzError | type[AuthzError]) -> int:
    """The HTTP status an error (or error class) is answered with."""
    cls = error if isinstance(error, type) else type(error)
    status = _RESOLVED.get(cls)
    if status is None:
        status = _RESOLVED[cls] = next(HTTP_STATUS[k] for k in cls.__mro__ if k in HTTP_STATUS)
    return status


def www_authenticate(challenge: Challenge) -> str:
    """RFC 9110 challenge syntax: ``Bearer realm="oms-auth", error="invalid_token"``."""
    params = ", ".join(f'{name}="{value}"' for name, value in challenge.params)
    return f"{challenge.scheme} {params}" if params else challenge.scheme


def http_headers(error: AuthzError) -> dict[str, str]:
    """The headers an error's typed data calls for."""
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.challenge is not None:
        headers["WWW-Authenticate"] = www_authenticate(error.challenge)
    return headers


def envelope(
    code: str, message: str, details: dict[str, Any] | None = None, request_id: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": request_id or request_id_var.get(),
        }
    }


def error_response(exc: AuthzError, *, status: int | None = None) -> Response:
    return FastJSONResponse(
        envelope(exc.code, exc.message, exc.details),
        status_code=status or http_status(exc),
        headers=http_headers(exc) or None,
    )
