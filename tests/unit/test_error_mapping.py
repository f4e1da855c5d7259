"""Every domain error keeps its code, HTTP status and headers: the table below is the contract.

Domain errors carry no HTTP; `app.api.errors` maps them. A change to the tree or to the
mapping that moves any status, code or header fails here.
"""

from __future__ import annotations

import inspect

import orjson
import pytest

import app.errors as errors_module
from app.adapters.http.api_key import CHALLENGE as API_KEY
from app.adapters.http.bearer import BEARER, challenge
from app.adapters.http.responses import error_response, http_headers, http_status
from app.errors import (
    ALL_ERRORS,
    KINDS,
    AuthenticationFailed,
    AuthzError,
    BatchTooLarge,
    Conflict,
    DependencyUnavailable,
    DeviceMismatch,
    Forbidden,
    IdempotencyMismatch,
    InsufficientScope,
    InternalError,
    InvalidPolicy,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    RequestInvalid,
    RoleNotFound,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    Unavailable,
)

# class -> (code, status, kind)
TREE: dict[type[AuthzError], tuple[str, int, type[AuthzError]]] = {
    AuthenticationFailed: ("AUTH_001", 401, AuthenticationFailed),
    TokenExpired: ("AUTH_002", 401, AuthenticationFailed),
    InsufficientScope: ("AUTH_003", 403, Forbidden),
    TokenInvalid: ("AUTH_004", 401, AuthenticationFailed),
    TokenRevoked: ("AUTH_005", 401, AuthenticationFailed),
    DeviceMismatch: ("AUTH_006", 401, AuthenticationFailed),
    RoleNotFound: ("RBAC_001", 404, NotFound),
    PermissionDenied: ("RBAC_002", 403, Forbidden),
    InvalidPolicy: ("RBAC_003", 422, InvalidRequest),
    RequestInvalid: ("REQ_001", 422, InvalidRequest),
    BatchTooLarge: ("REQ_002", 413, InvalidRequest),
    PayloadTooLarge: ("REQ_003", 413, InvalidRequest),
    NotFound: ("REQ_004", 404, NotFound),
    MethodNotAllowed: ("REQ_005", 405, InvalidRequest),
    Conflict: ("REQ_006", 409, Conflict),
    IdempotencyMismatch: ("REQ_007", 422, InvalidRequest),
    RateLimited: ("RATE_001", 429, RateLimited),
    DependencyUnavailable: ("SYS_001", 503, Unavailable),
    InternalError: ("SYS_002", 500, InternalError),
    Overloaded: ("SYS_003", 503, Unavailable),
}

# The errors as the service raises them with typed data -> (status, headers) on the wire.
RAISED: list[tuple[AuthzError, int, dict[str, str]]] = [
    (AuthenticationFailed("Invalid credentials"), 401, {}),
    (
        AuthenticationFailed("Authentication required", challenge=BEARER),
        401,
        {"WWW-Authenticate": 'Bearer realm="oms-auth"'},
    ),
    (
        AuthenticationFailed("Invalid API key", challenge=API_KEY),
        401,
        {"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
    ),
    (
        TokenInvalid("Bearer token is empty", challenge=challenge("invalid_request")),
        401,
        {"WWW-Authenticate": 'Bearer realm="oms-auth", error="invalid_request"'},
    ),
    (
        TokenExpired(challenge=challenge("invalid_token")),
        401,
        {"WWW-Authenticate": 'Bearer realm="oms-auth", error="invalid_token"'},
    ),
    (
        RateLimited("Too many requests: the limit is 5/minute", retry_after=42),
        429,
        {"Retry-After": "42"},
    ),
    (Overloaded(), 503, {"Retry-After": "1"}),
    (Overloaded("The service is stopping", retry_after=3), 503, {"Retry-After": "3"}),
    (Conflict("still in progress", retry_after=1), 409, {"Retry-After": "1"}),
    *((cls(), TREE[cls][1], {}) for cls in ALL_ERRORS if cls is not Overloaded),
]


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_each_error_keeps_its_code_status_and_kind(cls: type[AuthzError]) -> None:
    code, status, kind = TREE[cls]
    assert cls.code == code
    assert http_status(cls) == status == http_status(cls())
    assert issubclass(cls, kind) and kind in KINDS


@pytest.mark.parametrize(
    ("error", "status", "headers"),
    RAISED,
    ids=lambda v: type(v).__name__ if isinstance(v, AuthzError) else None,
)
def test_each_error_answers_with_its_status_and_headers(
    error: AuthzError, status: int, headers: dict[str, str]
) -> None:
    assert (http_status(error), http_headers(error)) == (status, headers)
    response = error_response(error)
    assert response.status_code == status
    assert {
        k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")
    } == {k.lower(): v for k, v in headers.items()}
    body = orjson.loads(bytes(response.body))["error"]
    assert (body["code"], body["message"], body["details"]) == (
        error.code,
        error.message,
        error.details,
    )


def test_the_table_covers_every_error_defined() -> None:
    defined = {
        obj
        for _, obj in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(obj, AuthzError) and obj is not AuthzError
    }
    assert defined == set(ALL_ERRORS) | set(KINDS)
    assert set(TREE) == set(ALL_ERRORS)
    assert len({cls.code for cls in ALL_ERRORS}) == len(ALL_ERRORS)
    assert all(cls.__bases__ == (AuthzError,) for cls in KINDS)


def test_overloaded_keeps_retry_after_in_its_details() -> None:
    assert Overloaded(retry_after=4).details == {"retry_after": 4}
    assert Overloaded(retry_after=2, details={"pool": "hash"}).details == {
        "retry_after": 2,
        "pool": "hash",
    }
