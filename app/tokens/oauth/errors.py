"""Our domain errors in RFC 6749 §5.2 form (`{"error", "error_description"}`)."""

from __future__ import annotations

import re
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidScopeError

from app.errors import AuthzError, InsufficientScope, InternalError, RateLimited, Unavailable

_NOT_ALLOWED = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def safe_description(text: str) -> str:
    """RFC 6749 allows only a subset of printable ASCII in error_description."""
    return _NOT_ALLOWED.sub("'", text)[:300]


class DomainOAuthError(OAuth2Error):  # type: ignore[misc]
    """One of our errors in RFC 6749 §5.2 form, under the registered `error` closest to it.

    It carries no HTTP status or header of its own: the HTTP edge gives both from the
    error's kind, with the same table as every other route (`OAuthServer(http_form=...)`).
    A rate limit's body also names the limit and its window."""

    def __init__(self, source: AuthzError, error: str) -> None:
        super().__init__(description=safe_description(source.message))
        self.error = error
        self.source = source

    def get_body(self) -> list[tuple[str, Any]]:
        body: list[tuple[str, Any]] = super().get_body()
        if isinstance(self.source, RateLimited):
            details = self.source.details
            body.extend((k, details[k]) for k in ("limit", "window") if k in details)
        return body


def to_oauth_error(exc: AuthzError) -> OAuth2Error:
    if isinstance(exc, InsufficientScope):
        return InvalidScopeError(description=safe_description(exc.message))
    if isinstance(exc, RateLimited | Unavailable):
        # 429 or 503; `temporarily_unavailable` is the registered code closest to both
        return DomainOAuthError(exc, "temporarily_unavailable")
    if exc.code.startswith("AUTH_"):
        return InvalidGrantError(description=safe_description(exc.message))
    return DomainOAuthError(InternalError(), "server_error")  # says "Internal error" only
