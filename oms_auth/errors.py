"""Errors the SDK raises. Catch `OmsAuthError` for everything, or a subclass for one case.

OmsAuthError
├── TransportError ............... the service could not be reached (network, timeout)
└── ApiError ..................... the service answered with an error envelope
    ├── InvalidCredentials ....... AUTH_001
    ├── TokenExpired ............. AUTH_002
    ├── InsufficientScope ........ AUTH_003
    ├── TokenInvalid ............. AUTH_004
    ├── TokenRevoked ............. AUTH_005
    ├── DeviceMismatch ........... AUTH_006
    ├── RoleNotFound ............. RBAC_001
    ├── PermissionDenied ......... RBAC_002
    ├── InvalidPolicy ............ RBAC_003
    ├── RequestInvalid ........... REQ_001 (and other REQ_ codes)
    ├── BatchTooLarge ............ REQ_002
    ├── RateLimited .............. RATE_001 (`retry_after` seconds)
    └── ServiceUnavailable ....... SYS_001, SYS_002
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "BatchTooLarge",
    "DeviceMismatch",
    "InsufficientScope",
    "InvalidCredentials",
    "InvalidPolicy",
    "OmsAuthError",
    "PermissionDenied",
    "RateLimited",
    "RequestInvalid",
    "RoleNotFound",
    "ServiceUnavailable",
    "TokenExpired",
    "TokenInvalid",
    "TokenRevoked",
    "TransportError",
]


class OmsAuthError(Exception):
    """Root of every SDK error."""


class TransportError(OmsAuthError):
    """The request did not get an HTTP answer (connection refused, timeout, ...)."""


class ApiError(OmsAuthError):
    code: str = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int = 0,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status
        self.details = details or {}
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidCredentials(ApiError):
    code = "AUTH_001"


class TokenExpired(ApiError):
    code = "AUTH_002"


class InsufficientScope(ApiError):
    code = "AUTH_003"


class TokenInvalid(ApiError):
    code = "AUTH_004"


class TokenRevoked(ApiError):
    code = "AUTH_005"


class DeviceMismatch(ApiError):
    code = "AUTH_006"


class RoleNotFound(ApiError):
    code = "RBAC_001"


class PermissionDenied(ApiError):
    code = "RBAC_002"


class InvalidPolicy(ApiError):
    code = "RBAC_003"


class RequestInvalid(ApiError):
    code = "REQ_001"


class BatchTooLarge(ApiError):
    code = "REQ_002"


class RateLimited(ApiError):
    code = "RATE_001"

    @property
    def retry_after(self) -> float | None:
        value = self.details.get("retry_after")
        return float(value) if isinstance(value, int | float) else None


class ServiceUnavailable(ApiError):
    code = "SYS_001"


_BY_CODE: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        InvalidCredentials,
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
        RateLimited,
        ServiceUnavailable,
    )
}


def error_for(
    *, code: str, message: str, status: int, details: dict[str, Any], request_id: str | None
) -> ApiError:
    if code in _BY_CODE:
        cls = _BY_CODE[code]
    elif code.startswith("REQ_"):
        cls = RequestInvalid
    elif code.startswith("SYS_"):
        cls = ServiceUnavailable
    else:
        cls = ApiError
    return cls(message, code=code, status=status, details=details, request_id=request_id)
