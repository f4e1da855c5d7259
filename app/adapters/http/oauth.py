"""The FastAPI/Starlette adapter for Authlib (Authlib ships server integrations for Flask and
Django only). `app.tokens.oauth` stays framework-free; this module is its only HTTP binding.

The form body is read on the event loop first (Authlib expects it parsed), then the whole
Authlib request runs in a worker thread, since its API is synchronous; storage and password
hashing reach back to the loop through the `Bridge`.

Those threads are this adapter's own bounded pool, never the loop's default executor: a
thread blocked on the bridge waits for coroutines that may themselves need the default
executor (the in-memory rate-limit storage does), so sharing it would deadlock under a burst
of token requests. A request that finds every thread busy waits `ADMISSION_WAIT_SECONDS` at
most, then gets 503 `temporarily_unavailable` with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from loguru import logger
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.security.fingerprint import FINGERPRINT_HEADER
from app.tokens.oauth.requests import FormRequest
from app.tokens.oauth.server import OAuthResponse, OAuthServer

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 50
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
OAUTH_THREADS = 16
ADMISSION_WAIT_SECONDS = 2.0
RETRY_AFTER_SECONDS = 1


class FormError(ValueError):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict; repeated parameters are refused (RFC 6749 §3.2)."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_TYPE:
        raise FormError(f"Content-Type must be {FORM_TYPE}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormError("Request body is too large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("Request body is not a valid form") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise FormError(f"Parameter {key!r} is repeated")
        form[key] = value
    return form


def oauth_error(status: int, error: str, description: str) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=_NO_STORE
    )


class OAuthHTTP:
    def __init__(
        self,
        server: OAuthServer,
        *,
        require_https: bool,
        unavailable: Callable[[BaseException], bool] = lambda exc: False,
        threads: int = OAUTH_THREADS,
    ) -> None:
        self.server = server
        self.require_https = require_https
        self.unavailable = unavailable  # "a dependency is down" (503), not a bug (500)
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="oauth")
        self._slots = asyncio.Semaphore(threads)
        self._closed = False

    def close(self) -> None:
        self._closed = True
        self.server.bridge.close()
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def token(self, request: Request) -> Response:
        return await self._handle(request, self.server.token_response)

    async def revocation(self, request: Request) -> Response:
        return await self._handle(request, lambda r: self.server.endpoint_response("revocation", r))

    async def introspection(self, request: Request) -> Response:
        return await self._handle(
            request, lambda r: self.server.endpoint_response("introspection", r)
        )

    async def _handle(
        self, request: Request, call: Callable[[FormRequest], OAuthResponse]
    ) -> Response:
        if self.require_https and request.url.scheme != "https":
            return oauth_error(400, "invalid_request", "HTTPS is required")
        try:
            form = await read_form(request)
        except FormError as exc:
            return oauth_error(400, "invalid_request", str(exc))
        if not _basic_auth_is_readable(request.headers.get("authorization")):
            # Authlib would crash on a Basic header that is not base64 UTF-8.
            return oauth_error(401, "invalid_client", "Malformed Basic authorization header")
        oauth_request = FormRequest(
            method=request.method,
            uri=str(request.url),
            headers=request.headers,
            form=form,
            client_ip=request.client.host if request.client else None,
            fingerprint=request.headers.get(FINGERPRINT_HEADER),
        )
        oauth_request.still_wanted = _still_wanted(request)
        if self._closed:
            return _busy()
        try:
            async with asyncio.timeout(ADMISSION_WAIT_SECONDS):
                await self._slots.acquire()
        except TimeoutError:
            return _busy()
        try:
            loop = asyncio.get_running_loop()
            status, body, headers = await loop.run_in_executor(self._threads, call, oauth_request)
        except FutureCancelled as exc:  # the service is stopping (see Bridge.close)
            logger.info("oauth.request_cancelled", reason=type(exc).__name__)
            return _busy()
        except Exception as exc:
            if self.unavailable(exc):
                logger.error("oauth.dependency_unavailable", error=type(exc).__name__)
                return oauth_error(503, "temporarily_unavailable", "Try again later")
            logger.exception("oauth.request_failed", path=request.url.path)
            return oauth_error(500, "server_error", "Internal error")
        finally:
            self._slots.release()
        return _response(status, body, headers)


def _busy() -> Response:
    response = oauth_error(503, "temporarily_unavailable", "The server is busy; retry shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _still_wanted(request: Request) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not await request.is_disconnected()

    return check


def _basic_auth_is_readable(header: str | None) -> bool:
    if not header or not header.lower().startswith("basic "):
        return True
    try:
        base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return True


def _response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    merged = {k: v for k, v in headers if k.lower() != "content-type"}
    return JSONResponse(body if body is not None else {}, status_code=status, headers=merged)
