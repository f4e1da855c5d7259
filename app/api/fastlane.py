"""Lean paths for the hottest routes: the common case without the framework's per-request cost.

Measured here, FastAPI spends about 100 µs per request resolving dependencies, validating the
body into a model and the response out of one, and its routing and exception layers a few
tens more: together more than an indexed decision costs, enough to halve the throughput of a
decision endpoint. The request-context middleware (request id, body limit, access log,
metrics) hands requests for a fast path straight to its `FastHandler`, which validates the
body with the documented route's own pydantic model (`TypeAdapter.validate_json`), runs the
same handler code and renders the answer with orjson. Decision callers are admitted (token
mode: authenticated, checks charged) by the same function the documented routes use,
`app.api.principals.admit_decision_caller`; a request it admitted is not charged again if it
then falls through to the documented route.

Anything a handler does not answer itself (a body that is not JSON or does not validate, an
explain request, an `AuthzError` such as a domain the model lacks, a service still starting)
continues, body included, down the normal stack to the documented FastAPI route, so errors,
envelopes and the OpenAPI document are exactly FastAPI's. A differential test holds both to
the same answers. The exception: the errors a route lists in `renders` are answered by the
lane with the same envelope (`send_error`); logins use it to refuse a storm the hashing pool
cannot serve for a fraction of the documented route's cost (`app.api.bearer.login_admission`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import orjson
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.adapters.http.responses import envelope, http_headers, http_status
from app.api.deps import FastPorts, fast_ports
from app.errors import AuthzError

# Returns the JSON response body, or None to hand the request to the documented route.
FastHandler = Callable[[FastPorts, bytes, HTTPConnection], Awaitable[bytes | None]]


@dataclass(frozen=True)
class FastRoute:
    path: str
    method: str
    handler: FastHandler
    renders: tuple[type[AuthzError], ...] = ()  # errors the lane answers itself


async def send_error(send: Send, exc: AuthzError) -> None:
    """The error envelope of `exc`, with its status and headers (as the API renders it)."""
    body = orjson.dumps(envelope(exc.code, exc.message, exc.details))
    await send(
        {
            "type": "http.response.start",
            "status": http_status(exc),
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *((k.lower().encode(), v.encode()) for k, v in http_headers(exc).items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def is_json(scope: Scope) -> bool:
    """Exactly `application/json` (parameters allowed): the only type the lane handles."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == b"application/json")
    return False


class FastLane:
    def __init__(self, routes: Iterable[FastRoute]) -> None:
        self._routes = {(r.method, r.path): r for r in routes}

    def route(self, scope: Scope) -> FastRoute | None:
        return self._routes.get((scope["method"], scope["path"]))

    async def handle(
        self, route: FastRoute, scope: Scope, receive: Receive, send: Send, app: ASGIApp
    ) -> None:
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        answer = None
        ports = fast_ports(scope["app"])
        if ports is not None and body and is_json(scope):
            try:
                answer = await route.handler(ports, body, HTTPConnection(scope))
            except AuthzError as exc:
                if isinstance(exc, route.renders):
                    await send_error(send, exc)
                    return
                answer = None  # the documented route raises it again and renders it
        if answer is None:
            await app(scope, replay_body(body, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app an already read body, then the real stream."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
