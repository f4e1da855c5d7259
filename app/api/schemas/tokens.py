"""Request and response bodies of the login, token-validation and v2 check APIs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from app.api.schemas.common import MAX_BATCH, Identifier, refuse_large_batch
from app.security.passwords import MAX_PASSWORD_LENGTH

TokenText = str


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=150, examples=["alice"])
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH, examples=["s3cret-pass"])


class LoginV2Request(LoginRequest):
    scope: str | None = Field(
        default=None,
        max_length=8192,
        description="Space-separated `resource:action` scopes to narrow the token to",
        examples=["api:schemas:read api:schemas:write"],
    )


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = Field(examples=["Bearer"])
    expires_in: int = Field(examples=[900])
    refresh_token: str | None = None
    refresh_expires_in: int | None = Field(default=None, examples=[1209600])
    scope: str | None = Field(default=None, examples=["api:schemas:read api:schemas:write"])


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutRequest(BaseModel):
    refresh_token: str | None = Field(
        default=None, max_length=512, description="Also revoke this refresh token's session"
    )


class MeResponse(BaseModel):
    subject: str = Field(examples=["alice"])
    user_id: str | None = None
    is_admin: bool
    roles: list[str] = Field(description="The roles the policy gives the subject now")
    token: dict[str, Any] = Field(
        description="The presented token: jti, client_id, version, scope, iat, exp"
    )


class ValidateRequest(BaseModel):
    token: TokenText = Field(min_length=1, max_length=16_384)
    audience: str | None = Field(default=None, max_length=255)
    device_fingerprint: str | None = Field(
        default=None, max_length=512, description="Required for device-bound tokens"
    )


class BatchTokenItem(BaseModel):
    token: TokenText = Field(min_length=1, max_length=16_384)
    device_fingerprint: str | None = Field(default=None, max_length=512)


class BatchValidateRequest(BaseModel):
    tokens: list[TokenText | BatchTokenItem] = Field(
        min_length=1,
        description=f"1 to {MAX_BATCH} tokens (strings, or objects with a fingerprint)",
    )
    audience: str | None = Field(default=None, max_length=255)

    @model_validator(mode="before")
    @classmethod
    def _not_too_many(cls, data: Any) -> Any:
        return refuse_large_batch(data, "tokens")


class TokenError(BaseModel):
    code: str = Field(examples=["AUTH_002"])
    message: str = Field(examples=["Token has expired"])
    details: dict[str, Any] = Field(default_factory=dict)


class ValidationResult(BaseModel):
    valid: bool
    claims: dict[str, Any] | None = None
    error: TokenError | None = None


class BatchValidationResponse(BaseModel):
    results: list[ValidationResult]
    valid_count: int


class ScopeCheckRequest(BaseModel):
    resource: Identifier = Field(examples=["api:schemas"])
    action: Identifier = Field(examples=["write"])
    domain: Identifier | None = None
    subject: None = Field(
        default=None,
        description=(
            "Not accepted: the subject is the bearer token's own. To ask about another "
            "subject use `POST /api/v1/authz/check`."
        ),
    )

    @field_validator("subject", mode="before")
    @classmethod
    def _no_subject(cls, value: object) -> None:
        if value is not None:
            raise ValueError(
                "the subject of a v2 check is the bearer token's own; leave it out, or ask "
                "about another subject with POST /api/v1/authz/check"
            )
        return None


class ScopeCheckResponse(BaseModel):
    allowed: bool
    decided_by: str = Field(examples=["token_scope"], description="token_scope | engine")
    reason: str
    subject: str
    matched_scope: str | None = None
    decision_id: str | None = None
    policy_revision: int | None = None
