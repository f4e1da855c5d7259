"""JSON responses rendered with orjson (several times faster than the stdlib encoder), and
the README's error envelope that every failure on `/api/*` is answered with."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

from app.errors import AuthzError
from app.observability.logging import request_id_var


class FastJSONResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


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
        status_code=status or exc.status,
        headers=exc.headers or None,
    )
