"""The one place failures become HTTP responses: the README's error envelope (rendered by
`app.adapters.http.responses`, which the write runner shares).

``{"error": {"code", "message", "details", "request_id"}}``. Validation errors list the
offending fields; unknown exceptions become SYS_002 with no trace of their internals.
AuthZEN endpoints answer a malformed request with 400 (their spec), the rest with 422.
Domain errors know nothing of HTTP: the kind-to-status table and the headers an error's
typed data calls for live beside the envelope in `app.adapters.http.responses`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from loguru import logger
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.adapters.http.responses import (
    error_response,
)
from app.errors import (
    AuthzError,
    BatchTooLarge,
    DependencyUnavailable,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestInvalid,
)
from app.store.availability import CONNECTION_ERRORS

BATCH_TOO_LARGE = "batch_too_large"


def _is_union_tag(part: object) -> bool:
    """Pydantic names each member of a union in `loc` (`EntityIn`, `function-after[...]`)."""
    return isinstance(part, str) and (part[:1].isupper() or any(c in part for c in "[](),-"))


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """One entry per field (the first reason), with union member names left out."""
    fields: dict[str, dict[str, Any]] = {}
    for err in exc.errors():
        loc = [
            str(p)
            for p in err.get("loc", ())
            if p not in ("body", "query", "path") and not _is_union_tag(p)
        ]
        name = ".".join(loc) or "body"
        fields.setdefault(
            name,
            {
                "field": name,
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            },
        )
    return list(fields.values())


def _is_authzen(request: Request) -> bool:
    return request.url.path.startswith("/access/")


async def handle_authz_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthzError)
    if isinstance(exc, RequestInvalid) and _is_authzen(request):
        return error_response(exc, status=400)
    return error_response(exc)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = _field_errors(exc)
    too_large = next((f for f in fields if f["type"] == BATCH_TOO_LARGE), None)
    if too_large is not None:
        return error_response(
            BatchTooLarge(too_large["message"], details={"field": too_large["field"]})
        )
    details: dict[str, Any] = {"fields": fields}
    hint = json_body_hint(request.headers.get("content-type"), fields)
    if hint is not None:
        details["hint"] = hint
    error = RequestInvalid(details=details)
    return error_response(error, status=400 if _is_authzen(request) else None)


_WHOLE_BODY_TYPES = {"model_attributes_type", "dict_type", "json_invalid", "model_type"}


def json_body_hint(content_type: str | None, fields: list[dict[str, Any]]) -> str | None:
    """A hint for the commonest newcomer mistake: a form or text body sent to a JSON route
    (`curl -d` without `-H 'content-type: application/json'`)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return None
    if not any(f["field"] == "body" and f["type"] in _WHOLE_BODY_TYPES for f in fields):
        return None
    sent = media or "no content type"
    return (
        f"this route takes a JSON body, but the request was sent as {sent}: send "
        "`Content-Type: application/json` (curl: -H 'content-type: application/json')"
    )


async def handle_database_unavailable(request: Request, exc: Exception) -> Response:
    logger.error("database.unavailable", error=type(exc).__name__, path=request.url.path)
    return error_response(
        DependencyUnavailable("The database is unavailable", details={"dependency": "database"})
    )


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    mapped: AuthzError
    if exc.status_code == 404:
        mapped = NotFound(f"No route for {request.method} {request.url.path}")
    elif exc.status_code == 405:
        mapped = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    elif exc.status_code == 413:
        mapped = PayloadTooLarge()
    elif 400 <= exc.status_code < 500:
        mapped = RequestInvalid(str(exc.detail))
        return error_response(mapped, status=exc.status_code)
    else:
        mapped = InternalError()
    return error_response(mapped)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AuthzError, handle_authz_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    for db_error in CONNECTION_ERRORS:
        app.add_exception_handler(db_error, handle_database_unavailable)
