"""What the SDK returns: small frozen dataclasses, not raw dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "Entity", "TokenSet", "TokenValidation"]


@dataclass(frozen=True)
class Entity:
    """An AuthZEN-style subject or resource; plain strings work too wherever one is taken."""

    id: str
    type: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.type is not None:
            out["type"] = self.type
        if self.properties:
            out["properties"] = self.properties
        return out


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    decision_id: str | None = None
    cached: bool = False
    policy_revision: int | None = None
    explain: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # set on a batch item the service could not decide

    def __bool__(self) -> bool:
        return self.allowed

    @classmethod
    def from_json(cls, data: dict[str, Any], *, revision: int | None = None) -> CheckResult:
        error = data.get("error")
        return cls(
            allowed=bool(data.get("allowed", False)),
            decision_id=data.get("decision_id"),
            cached=bool(data.get("cached", False)),
            policy_revision=data.get("policy_revision", revision),
            explain=data.get("explain"),
            error=error if isinstance(error, dict) else None,
        )


@dataclass(frozen=True)
class TokenSet:
    """What a login or refresh returns."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (a token type, not a secret)
    expires_in: int = 0
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    scope: str | None = None

    def __repr__(self) -> str:  # never print a token by accident
        return f"TokenSet(token_type={self.token_type!r}, expires_in={self.expires_in})"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenSet:
        return cls(
            access_token=data["access_token"],
            token_type=data.get("token_type", "Bearer"),
            expires_in=int(data.get("expires_in", 0)),
            refresh_token=data.get("refresh_token"),
            refresh_expires_in=data.get("refresh_expires_in"),
            scope=data.get("scope"),
        )


@dataclass(frozen=True)
class TokenValidation:
    """The service's verdict on a token: its claims, or why it is not valid."""

    valid: bool
    claims: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None  # {"code", "message", "details"}

    def __bool__(self) -> bool:
        return self.valid

    @property
    def code(self) -> str | None:
        return None if self.error is None else str(self.error.get("code"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenValidation:
        return cls(
            valid=bool(data.get("valid")), claims=data.get("claims") or {}, error=data.get("error")
        )
