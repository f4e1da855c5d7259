"""The route class of every router: JSON bodies are parsed strictly, by orjson.

Starlette's `Request.json()` uses the standard library, which accepts what JSON (RFC 8259)
does not: `NaN` and `Infinity`, and escapes of lone surrogates (`"\\ud800"`) that no later
encoder can write back; and it fails on invalid UTF-8 with a `UnicodeDecodeError` that
FastAPI answers with a bare 400. orjson refuses all of these with a `JSONDecodeError`, which
FastAPI turns into the same 422 `REQ_001` as any other malformed body.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())  # orjson.JSONDecodeError on bad input
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            if not isinstance(request, StrictJSONRequest):
                request = StrictJSONRequest(request.scope, request.receive, request._send)
            return await handler(request)

        return strict
