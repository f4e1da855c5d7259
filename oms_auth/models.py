"""What the SDK returns: small frozen dataclasses, not raw dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "Entity"]


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
