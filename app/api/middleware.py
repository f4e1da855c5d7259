"""Per-request context as one pure ASGI middleware (no BaseHTTPMiddleware overhead).

- `X-Request-ID`: any value up to `request_id_max_bytes` is echoed verbatim on every response
  (an empty or longer one is replaced by a generated `req_...`); log lines and error bodies
  carry a sanitised copy (printable ASCII, at most 128 characters).
- Body size: over the limit is refused with 413 `REQ_003` before the app reads it.
- Failures nothing else caught become a 500 `SYS_002` envelope, logged with the traceback.
- A request cancelled by the server (graceful shutdown ran out of time) is answered 503
  `SYS_003` if nothing was sent yet and logged as one `http.request_cancelled` line: a
  cancellation is not an error, and must not print a traceback per request.
- One `http.request` log event and the HTTP metrics per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from typing import Any

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.fastlane import FastLane, replay_body, send_error
from app.errors import InternalError, Overloaded, PayloadTooLarge
from app.observability.logging import info_event, request_id_var
from app.observability.metrics import Metrics

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
LOGGED_REQUEST_ID_CHARS = 128
_QUIET_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def sanitised_request_id(raw: bytes) -> str:
    """The request id as logs and error bodies show it: printable ASCII, bounded."""
    text = _UNPRINTABLE.sub("?", raw.decode("latin-1"))
    if len(text) > LOGGED_REQUEST_ID_CHARS:
        text = text[: LOGGED_REQUEST_ID_CHARS - 3] + "..."
    return text


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics | None,
        max_body_bytes: int,
        fast_lane: FastLane | None = None,
        request_id_max_bytes: int = 1024,
    ) -> None:
        self.app = app
        self.request_id_max_bytes = request_id_max_bytes
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.fast_lane = fast_lane
        # Labelled children looked up once per label set, not per request (~7 µs saved).
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        raw_id = self._request_id(scope)
        request_id = sanitised_request_id(raw_id)
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", raw_id)
        status_holder = [500]
        response_started = False
        fast = self.fast_lane.route(scope) if self.fast_lane is not None else None

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder[0] = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            length = self._content_length(scope)
            if length is not None and length > self.max_body_bytes:
                await send_error(send_with_id, self._too_large())
                return
            if length is None and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
                receive = await self._buffered(receive)
            if fast is not None:
                assert self.fast_lane is not None
                await self.fast_lane.handle(fast, scope, receive, send_with_id, self.app)
            else:
                await self.app(scope, receive, send_with_id)
        except _BodyTooLarge:
            await send_error(send_with_id, self._too_large())
        except asyncio.CancelledError:
            status_holder[0] = 503 if not response_started else status_holder[0]
            logger.info("http.request_cancelled", path=scope.get("path"))
            if not response_started:
                with contextlib.suppress(Exception):
                    await send_error(
                        send_with_id, Overloaded("The server is stopping; retry elsewhere")
                    )
        except Exception:
            logger.exception("http.unhandled_error", path=scope.get("path"))
            if not response_started:
                await send_error(send_with_id, InternalError())
        finally:
            template = fast.path if fast is not None else None
            self._finish(scope, status_holder[0], time.perf_counter() - started, template)
            request_id_var.reset(token)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"Request body exceeds {self.max_body_bytes} bytes",
            details={"limit_bytes": self.max_body_bytes},
        )

    def _request_id(self, scope: Scope) -> bytes:
        """The caller's X-Request-ID as sent (the server already parsed it as a header
        value, so it holds no line breaks), or a new one when absent, empty or too long."""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                if 0 < len(value) <= self.request_id_max_bytes and value.strip():
                    return bytes(value)
                break
        return new_request_id().encode()

    @staticmethod
    def _content_length(scope: Scope) -> int | None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    async def _buffered(self, receive: Receive) -> Receive:
        """Read a body of unknown length up to the limit, then replay it to the app."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return replay_body(b"".join(chunks), receive)

    def _finish(self, scope: Scope, status: int, seconds: float, template: str | None) -> None:
        if template is None:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
        if self.metrics is not None:
            key = (template, scope["method"], status)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self.metrics.http_requests.labels(
                    route=template, method=scope["method"], status=str(status)
                )
            counter.inc()
            latency = self._latencies.get(template)
            if latency is None:
                latency = self._latencies[template] = self.metrics.http_latency.labels(
                    route=template
                )
            latency.observe(seconds)
        if scope.get("path") not in _QUIET_PATHS:
            client = scope.get("client")
            info_event(
                "http.request",
                __name__,
                method=scope["method"],
                route=template,
                status=status,
                duration_ms=round(seconds * 1000, 3),
                client_ip=client[0] if client else None,
            )


class _BodyTooLarge(Exception):
    pass
