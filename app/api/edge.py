"""The edge of every request, as one pure ASGI middleware (the outermost one).

- **Client address**: `X-Forwarded-For` / `X-Forwarded-Proto` are honoured only when the
  peer is one of `OMS_AUTH_TRUSTED_PROXIES` (CIDRs); the client is then the right-most
  address of the chain that is not itself a trusted proxy (the left part of the header is
  whatever the client wrote). Everything downstream (rate limits, audit, logs, the HTTPS
  check) sees the resolved `scope["client"]` and `scope["scheme"]`.
- **Transport**: with HTTPS required, a request over plain HTTP to a route that takes or
  returns a credential or token, or that carries one (`Authorization`, `X-API-Key`), is
  refused before it is read: 403 `RBAC_002` (RFC 6749 `invalid_request` on `/oauth/*`).
  HSTS is sent on every response then.
- **Headers**: `nosniff`, frame denial, a restrictive CSP (a looser one for the API docs
  pages, which load Swagger UI / ReDoc from a CDN), no referrer; `Cache-Control: no-store`
  on every response that did not choose its own caching.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import orjson
from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.adapters.http.responses import envelope
from app.addresses import Network

# Routes that take or return a credential or a token (prefix match).
CREDENTIAL_PREFIXES: tuple[str, ...] = (
    "/api/v1/auth/",
    "/api/v2/auth/",
    "/api/v1/tokens/",
    "/api/v1/admin",
    "/api/v1/policies",
    "/api/v1/roles",
    "/api/v1/audit",
    "/oauth/",
)
_DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
_API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
    b"worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'"
)
_HSTS = b"max-age=31536000; includeSubDomains"
_STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def is_trusted(host: str | None, networks: Sequence[Network]) -> bool:
    if not host or not networks:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in networks)


def resolve_client(
    peer: str | None, forwarded_for: str | None, networks: Sequence[Network]
) -> str | None:
    """The client address: the peer, unless it is a trusted proxy; then the right-most
    address of `X-Forwarded-For` that is not itself a trusted proxy."""
    if not is_trusted(peer, networks) or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled chain: trust nothing of it
        if not is_trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def needs_https(path: str, headers: Sequence[tuple[bytes, bytes]]) -> bool:
    if path.startswith(CREDENTIAL_PREFIXES):
        return True
    return any(name in (b"authorization", b"x-api-key") for name, _ in headers)


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, *, trusted_proxies: Sequence[Network] = (), require_https: bool
    ) -> None:
        self.app = app
        self.trusted = tuple(trusted_proxies)
        self.require_https = require_https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.trusted:
            self._resolve(scope)
        path: str = scope.get("path", "")
        docs = path in _DOCS_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in _STATIC_HEADERS if h[0] not in names)
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", _DOCS_CSP if docs else _API_CSP))
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if self.require_https:
                    headers.append((b"strict-transport-security", _HSTS))
                message["headers"] = headers
            await send(message)

        if (
            self.require_https
            and scope["type"] == "http"
            and scope.get("scheme") != "https"
            and needs_https(path, scope.get("headers", ()))
        ):
            await self._refuse_plain_http(path, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _resolve(self, scope: Scope) -> None:
        client = scope.get("client")
        peer = client[0] if client else None
        if not is_trusted(peer, self.trusted):
            return
        forwarded_for = proto = None
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                text = value.decode("latin-1")
                forwarded_for = text if forwarded_for is None else f"{forwarded_for},{text}"
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[-1].strip().lower()
        resolved = resolve_client(peer, forwarded_for, self.trusted)
        if resolved is not None and resolved != peer:
            scope["client"] = (resolved, 0)
        if proto in ("http", "https"):
            scope["scheme"] = (
                proto if scope["type"] == "http" else ("wss" if proto == "https" else "ws")
            )

    @staticmethod
    async def _refuse_plain_http(path: str, send: Send) -> None:
        logger.warning("http.https_required", path=path)
        if path.startswith("/oauth/"):
            body = orjson.dumps(
                {"error": "invalid_request", "error_description": "HTTPS is required"}
            )
            status = 400
        else:
            body = orjson.dumps(
                envelope("RBAC_002", "HTTPS is required", {"reason": "https_required"})
            )
            status = 403
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
