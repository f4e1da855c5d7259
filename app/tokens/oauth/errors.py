"""Our domain errors in RFC 6749 §5.2 form (`{"error", "error_description"}`)."""

from __future__ import annotations

import re
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidScopeError

from app.errors import (
    AuthzError,
    DependencyUnavailable,
    InsufficientScope,
    Overloaded,
    RateLimited,
)

_NOT_ALLOWED = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def safe_description(text: str) -> str:
    """RFC 6749 allows only a subset of printable ASCII in error_description."""
    return _NOT_ALLOWED.sub("'", text)[:300]


def _retry_after(source: AuthzError) -> list[tuple[str, str]]:
    return [] if source.retry_after is None else [("Retry-After", str(source.retry_after))]


class TooManyRequestsError(OAuth2Error):  # type: ignore[misc]
    """429 with Retry-After; `temporarily_unavailable` is the registered code closest to it."""

    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, source: RateLimited) -> None:
        super().__init__(description=safe_description(source.message))
        self.source = source

    def get_body(self) -> list[tuple[str, Any]]:
        body: list[tuple[str, Any]] = super().get_body()
        body.extend(
            (k, self.source.details[k]) for k in ("limit", "window") if k in self.source.details
        )
        return body

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = super().get_headers()
        return [*headers, *_retry_after(self.source)]


class TemporarilyUnavailableError(OAuth2Error):  # type: ignore[misc]
    error = "temporarily_unavailable"
    status_code = 503


class OverloadedError(TemporarilyUnavailableError):
    """503 with Retry-After: admission control refused the work before it started."""

    def __init__(self, source: Overloaded) -> None:
        super().__init__(description=safe_description(source.message))
        self.source = source

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = super().get_headers()
        return [*headers, *_retry_after(self.source)]


class ServerError(OAuth2Error):  # type: ignore[misc]
    error = "server_error"
    status_code = 500


def to_oauth_error(exc: AuthzError) -> OAuth2Error:
    description = safe_description(exc.message)
    if isinstance(exc, RateLimited):
        return TooManyRequestsError(exc)
    if isinstance(exc, InsufficientScope):
        return InvalidScopeError(description=description)
    if isinstance(exc, Overloaded):
        return OverloadedError(exc)
    if isinstance(exc, DependencyUnavailable):
        return TemporarilyUnavailableError(description=description)
    if exc.code.startswith("AUTH_"):
        return InvalidGrantError(description=description)
    return ServerError(description="Internal error")
