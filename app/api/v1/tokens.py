"""Token validation for resource servers: one token, or up to 1000 in one call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from pydantic import TypeAdapter
from pydantic import ValidationError as BodyInvalid
from starlette.requests import HTTPConnection

from app.api.deps import FastPorts, ValidatorDep
from app.api.fastlane import FastRoute
from app.api.openapi import error_responses
from app.api.principals import ValidationCaller, admit_validation_caller
from app.api.routing import StrictJSONRoute
from app.api.schemas.tokens import (
    BatchTokenItem,
    BatchValidateRequest,
    BatchValidationResponse,
    ValidateRequest,
    ValidationResult,
)
from app.errors import (
    AuthenticationFailed,
    AuthzError,
    BatchTooLarge,
    DependencyUnavailable,
    PermissionDenied,
    RequestInvalid,
)
from app.security.fingerprint import FINGERPRINT_HEADER
from app.tokens.claims import AccessClaims
from app.tokens.validator import TokenValidator

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/tokens", tags=["tokens"])

FingerprintHeader = Annotated[
    str | None,
    Header(
        alias="X-Device-Fingerprint",
        max_length=512,
        description="Fingerprint for device-bound tokens that carry none of their own",
    ),
]


def result(outcome: AccessClaims | AuthzError) -> dict[str, Any]:
    if isinstance(outcome, AccessClaims):
        return {"valid": True, "claims": outcome.raw}
    return {
        "valid": False,
        "error": {"code": outcome.code, "message": outcome.message, "details": outcome.details},
    }


@router.post(
    "/validate",
    response_model=ValidationResult,
    response_model_exclude_none=True,
    responses=error_responses(
        AuthenticationFailed, PermissionDenied, RequestInvalid, DependencyUnavailable
    ),
    summary="Validate one access token: `{valid, claims}` or `{valid: false, error}`",
)
async def validate(
    body: ValidateRequest,
    validator: ValidatorDep,
    _: ValidationCaller,
    fingerprint: FingerprintHeader = None,
) -> dict[str, Any]:
    return result(await _outcome(validator, body, body.device_fingerprint or fingerprint))


async def _outcome(
    validator: TokenValidator, body: ValidateRequest, fingerprint: str | None
) -> AccessClaims | AuthzError:
    try:
        return await validator.validate(body.token, fingerprint=fingerprint, audience=body.audience)
    except AuthzError as exc:
        return exc


@router.post(
    "/validate/batch",
    response_model=BatchValidationResponse,
    response_model_exclude_none=True,
    responses=error_responses(
        AuthenticationFailed, PermissionDenied, RequestInvalid, BatchTooLarge, DependencyUnavailable
    ),
    summary="Validate up to 1000 tokens: one signature pass, one revocation lookup",
)
async def validate_batch(
    body: BatchValidateRequest,
    validator: ValidatorDep,
    _: ValidationCaller,
    fingerprint: FingerprintHeader = None,
) -> dict[str, Any]:
    texts = [t.token if isinstance(t, BatchTokenItem) else t for t in body.tokens]
    prints = [
        (t.device_fingerprint if isinstance(t, BatchTokenItem) else None) or fingerprint
        for t in body.tokens
    ]
    outcomes = await validator.validate_many(texts, prints, audience=body.audience)
    results = [result(o) for o in outcomes]
    return {"results": results, "valid_count": sum(1 for r in results if r["valid"])}


# -- the fast lane (app.api.fastlane): same handler, without FastAPI's per-request cost -------
_VALIDATE = TypeAdapter(ValidateRequest)
_RESULT = TypeAdapter(ValidationResult)


async def _validate_fast(ports: FastPorts, body: bytes, connection: HTTPConnection) -> bytes | None:
    fingerprint = connection.headers.get(FINGERPRINT_HEADER)
    if fingerprint is not None and len(fingerprint) > 512:
        return None
    try:
        payload = _VALIDATE.validate_json(body)
    except BodyInvalid:
        return None
    # Token mode: the caller is authenticated and authorised as on the documented route (an
    # `AuthzError` hands the request to it, which answers the same error).
    await admit_validation_caller(ports.callers, connection)
    outcome = await _outcome(ports.validator, payload, payload.device_fingerprint or fingerprint)
    # The response model's own serializer: exactly what the documented route sends.
    return _RESULT.dump_json(_RESULT.validate_python(result(outcome)), exclude_none=True)


def fast_routes() -> list[FastRoute]:
    return [FastRoute("/api/v1/tokens/validate", "POST", _validate_fast)]
