"""Python SDK for oms-auth.

from oms_auth import AuthClient

async with AuthClient(base_url="http://localhost:8001") as client:
    if await client.check("alice", "api:schemas", "write"):
        ...
"""

from oms_auth.client import AuthClient, SyncAuthClient
from oms_auth.errors import (
    ApiError,
    BatchTooLarge,
    DeviceMismatch,
    InsufficientScope,
    InvalidCredentials,
    InvalidPolicy,
    OmsAuthError,
    PermissionDenied,
    RateLimited,
    RequestInvalid,
    RoleNotFound,
    ServiceUnavailable,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    TransportError,
)
from oms_auth.models import CheckResult, Entity, TokenSet, TokenValidation
from oms_auth.verify import AccessToken, TokenVerifier

__all__ = [
    "AccessToken",
    "ApiError",
    "AuthClient",
    "BatchTooLarge",
    "CheckResult",
    "DeviceMismatch",
    "Entity",
    "InsufficientScope",
    "InvalidCredentials",
    "InvalidPolicy",
    "OmsAuthError",
    "PermissionDenied",
    "RateLimited",
    "RequestInvalid",
    "RoleNotFound",
    "ServiceUnavailable",
    "SyncAuthClient",
    "TokenExpired",
    "TokenInvalid",
    "TokenRevoked",
    "TokenSet",
    "TokenValidation",
    "TokenVerifier",
    "TransportError",
]
