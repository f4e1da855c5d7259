"""The service's error tree: what went wrong, grouped by kind, with a stable code each.

Domain code raises these; they carry a code, a message, details and typed data (how long to
wait before a retry, how to authenticate) and know nothing of HTTP. At the HTTP edge,
`app.adapters.http.responses` maps each kind to its status and headers (one table,
`HTTP_STATUS`) and renders the JSON envelope ``{"error": {"code", "message", "details",
"request_id"}}``; `app.api.errors` installs the handlers that answer with it.

The kinds (classes without a code of their own are never raised themselves):

AuthzError
├── InvalidRequest ................. the request (or the policy it carries) is wrong
│   ├── RequestInvalid ............. REQ_001  details list the fields
│   ├── BatchTooLarge .............. REQ_002
│   ├── PayloadTooLarge ............ REQ_003  body over the configured limit
│   ├── MethodNotAllowed ........... REQ_005
│   ├── IdempotencyMismatch ........ REQ_007  an Idempotency-Key reused with another body
│   └── InvalidPolicy .............. RBAC_003 details say which line and why
├── AuthenticationFailed ........... AUTH_001 invalid credentials; `challenge` says how
│   ├── TokenExpired ............... AUTH_002
│   ├── TokenInvalid ............... AUTH_004 signature, audience, not-before, malformed
│   ├── TokenRevoked ............... AUTH_005
│   └── DeviceMismatch ............. AUTH_006 token bound to another device
├── Forbidden ...................... authenticated, not allowed
│   ├── InsufficientScope .......... AUTH_003
│   └── PermissionDenied ........... RBAC_002
├── NotFound ....................... REQ_004  no such route or resource
│   └── RoleNotFound ............... RBAC_001
├── Conflict ....................... REQ_006  e.g. the thing already exists
├── RateLimited .................... RATE_001 `retry_after`
├── Unavailable .................... nothing was done; a retry may succeed
│   ├── DependencyUnavailable ...... SYS_001  only where no safe fallback exists
│   └── Overloaded ................. SYS_003  admission control refused: `retry_after`
└── InternalError .................. SYS_002  anything unexpected; never a stack trace
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Challenge:
    """How a caller may authenticate: a scheme and its parameters (`Bearer`, realm, error)."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()

    def with_param(self, name: str, value: str) -> Challenge:
        return Challenge(self.scheme, (*self.params, (name, value)))


class AuthzError(Exception):
    code: ClassVar[str] = "SYS_002"
    default_message: ClassVar[str] = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
        challenge: Challenge | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        self.retry_after = retry_after  # seconds before a retry may succeed, when known
        self.challenge = challenge  # how to authenticate instead, when that is the way out
        super().__init__(self.message)


# -- the request is wrong --------------------------------------------------------------
class InvalidRequest(AuthzError):
    """The request, or what it carries, cannot be answered as sent."""


class RequestInvalid(InvalidRequest):
    code, default_message = "REQ_001", "Request validation failed"


class BatchTooLarge(InvalidRequest):
    code, default_message = "REQ_002", "Batch too large"


class PayloadTooLarge(InvalidRequest):
    code, default_message = "REQ_003", "Request body too large"


class MethodNotAllowed(InvalidRequest):
    code, default_message = "REQ_005", "Method not allowed"


class IdempotencyMismatch(InvalidRequest):
    code, default_message = "REQ_007", "This Idempotency-Key was used with a different request"


class InvalidPolicy(InvalidRequest):
    code, default_message = "RBAC_003", "Invalid policy"


# -- who is asking ---------------------------------------------------------------------
class AuthenticationFailed(AuthzError):
    """The caller is not authenticated: no, wrong or unusable credentials."""

    code, default_message = "AUTH_001", "Invalid credentials"


class TokenExpired(AuthenticationFailed):
    code, default_message = "AUTH_002", "Token has expired"


class TokenInvalid(AuthenticationFailed):
    code, default_message = "AUTH_004", "Token is invalid"


class TokenRevoked(AuthenticationFailed):
    code, default_message = "AUTH_005", "Token has been revoked"


class DeviceMismatch(AuthenticationFailed):
    code, default_message = "AUTH_006", "Token is bound to another device"


class Forbidden(AuthzError):
    """The caller is authenticated but may not do this."""


class InsufficientScope(Forbidden):
    code, default_message = "AUTH_003", "Insufficient permissions"


class PermissionDenied(Forbidden):
    code, default_message = "RBAC_002", "Permission denied"


# -- what is asked about ---------------------------------------------------------------
class NotFound(AuthzError):
    code, default_message = "REQ_004", "Not found"


class RoleNotFound(NotFound):
    code, default_message = "RBAC_001", "Role not found"


class Conflict(AuthzError):
    code, default_message = "REQ_006", "Conflict"


# -- the service cannot do it now ------------------------------------------------------
class RateLimited(AuthzError):
    code, default_message = "RATE_001", "Too many requests"


class Unavailable(AuthzError):
    """Nothing was done: a part the work needs is down or full; a later retry may succeed."""


class DependencyUnavailable(Unavailable):
    code, default_message = "SYS_001", "A dependency is unavailable"


class Overloaded(Unavailable):
    """Work refused before it started because its bounded pool and queue are full (or the
    caller went away): nothing was done, so a retry after `retry_after` is always safe."""

    code, default_message = "SYS_003", "The service is busy; retry shortly"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int = 1,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message,
            details={"retry_after": retry_after, **(details or {})},
            retry_after=retry_after,
        )


class InternalError(AuthzError):
    code, default_message = "SYS_002", "Internal error"


KINDS: tuple[type[AuthzError], ...] = (
    InvalidRequest,
    AuthenticationFailed,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    Unavailable,
    InternalError,
)
"""The kinds directly under `AuthzError`: every error is one of them."""

ALL_ERRORS: tuple[type[AuthzError], ...] = (
    AuthenticationFailed,
    TokenExpired,
    InsufficientScope,
    TokenInvalid,
    TokenRevoked,
    DeviceMismatch,
    RoleNotFound,
    PermissionDenied,
    InvalidPolicy,
    RequestInvalid,
    BatchTooLarge,
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
    Conflict,
    RateLimited,
    DependencyUnavailable,
    InternalError,
    Overloaded,
    IdempotencyMismatch,
)
"""Every error the service raises, one per stable code."""
