"""The service's error tree. Each class carries its stable code and HTTP status.

Routes and domain code raise these; one handler in `app.api.errors` turns any of them into
the JSON envelope ``{"error": {"code", "message", "details", "request_id"}}``.

AuthzError
├── AuthenticationFailed ........ AUTH_001 401  invalid credentials
├── TokenExpired ................ AUTH_002 401
├── InsufficientScope ........... AUTH_003 403
├── TokenInvalid ................ AUTH_004 401  signature, audience, not-before, malformed
├── TokenRevoked ................ AUTH_005 401
├── DeviceMismatch .............. AUTH_006 401  token bound to another device
├── RoleNotFound ................ RBAC_001 404
├── PermissionDenied ............ RBAC_002 403
├── InvalidPolicy ............... RBAC_003 422  details say which line and why
├── RequestInvalid .............. REQ_001  422  details list the fields
├── BatchTooLarge ............... REQ_002  413
├── PayloadTooLarge ............. REQ_003  413  body over the configured limit
├── NotFound .................... REQ_004  404  no such route or resource
├── MethodNotAllowed ............ REQ_005  405
├── Conflict .................... REQ_006  409  e.g. the thing already exists
├── RateLimited ................. RATE_001 429  Retry-After header
├── DependencyUnavailable ....... SYS_001  503  only where no safe fallback exists
├── InternalError ............... SYS_002  500  anything unexpected; never a stack trace
├── Overloaded .................. SYS_003  503  admission control refused: Retry-After header
└── IdempotencyMismatch ......... REQ_007  422  an Idempotency-Key reused with another body
"""

from __future__ import annotations

from typing import Any, ClassVar


class AuthzError(Exception):
    code: ClassVar[str] = "SYS_002"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


class AuthenticationFailed(AuthzError):
    code, status, default_message = "AUTH_001", 401, "Invalid credentials"


class TokenExpired(AuthzError):
    code, status, default_message = "AUTH_002", 401, "Token has expired"


class InsufficientScope(AuthzError):
    code, status, default_message = "AUTH_003", 403, "Insufficient permissions"


class TokenInvalid(AuthzError):
    code, status, default_message = "AUTH_004", 401, "Token is invalid"


class TokenRevoked(AuthzError):
    code, status, default_message = "AUTH_005", 401, "Token has been revoked"


class DeviceMismatch(AuthzError):
    code, status, default_message = "AUTH_006", 401, "Token is bound to another device"


class RoleNotFound(AuthzError):
    code, status, default_message = "RBAC_001", 404, "Role not found"


class PermissionDenied(AuthzError):
    code, status, default_message = "RBAC_002", 403, "Permission denied"


class InvalidPolicy(AuthzError):
    code, status, default_message = "RBAC_003", 422, "Invalid policy"


class RequestInvalid(AuthzError):
    code, status, default_message = "REQ_001", 422, "Request validation failed"


class BatchTooLarge(AuthzError):
    code, status, default_message = "REQ_002", 413, "Batch too large"


class PayloadTooLarge(AuthzError):
    code, status, default_message = "REQ_003", 413, "Request body too large"


class NotFound(AuthzError):
    code, status, default_message = "REQ_004", 404, "Not found"


class MethodNotAllowed(AuthzError):
    code, status, default_message = "REQ_005", 405, "Method not allowed"


class Conflict(AuthzError):
    code, status, default_message = "REQ_006", 409, "Conflict"


class RateLimited(AuthzError):
    code, status, default_message = "RATE_001", 429, "Too many requests"


class DependencyUnavailable(AuthzError):
    code, status, default_message = "SYS_001", 503, "A dependency is unavailable"


class InternalError(AuthzError):
    code, status, default_message = "SYS_002", 500, "Internal error"


class Overloaded(AuthzError):
    """Work refused before it started because its bounded pool and queue are full (or the
    caller went away): nothing was done, so a retry after `Retry-After` is always safe."""

    code, status, default_message = "SYS_003", 503, "The service is busy; retry shortly"

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
            headers={"Retry-After": str(retry_after)},
        )


class IdempotencyMismatch(AuthzError):
    code, status, default_message = (
        "REQ_007",
        422,
        "This Idempotency-Key was used with a different request",
    )


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
