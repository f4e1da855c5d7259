"""Request and response bodies of the decision API (`/api/v1/authz/...`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictBool, model_validator

from app.api.schemas.common import MAX_BATCH, Identifier, Properties, refuse_large_batch
from app.policy.request import DecisionRequest, Entity


class EntityIn(BaseModel):
    """An AuthZEN-style subject or resource: the id is what rules compare against."""

    type: Identifier | None = Field(default=None, examples=["document"])
    id: Identifier = Field(examples=["doc-42"])
    properties: Properties = Field(default_factory=dict, examples=[{"owner": "alice"}])


class ActionIn(BaseModel):
    name: Identifier = Field(examples=["write"])
    properties: Properties = Field(default_factory=dict)


def to_entity(value: str | EntityIn, kind: str) -> Entity:
    if isinstance(value, str):
        return Entity(value, kind=kind)
    return Entity(value.id, value.type, value.properties, kind=kind)


def to_action(value: str | ActionIn) -> Entity:
    if isinstance(value, str):
        return Entity(value, kind="action")
    return Entity(value.name, None, value.properties, kind="action")


class CheckItem(BaseModel):
    subject: Identifier | EntityIn = Field(examples=["alice"])
    resource: Identifier | EntityIn = Field(examples=["api:schemas"])
    action: Identifier | ActionIn = Field(examples=["write"])
    domain: Identifier | None = Field(default=None, description="Only for models with domains")
    explain: StrictBool | None = Field(
        default=None, description="Return the matched rule, role path and effect"
    )

    def to_request(self) -> DecisionRequest:
        return DecisionRequest(
            subject=to_entity(self.subject, "subject"),
            resource=to_entity(self.resource, "resource"),
            action=to_action(self.action),
            domain=self.domain,
        )


class CheckRequest(CheckItem):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {"subject": "alice", "resource": "api:schemas", "action": "write"},
                {
                    "subject": {"type": "user", "id": "alice", "properties": {"dept": "eng"}},
                    "resource": {
                        "type": "document",
                        "id": "doc-42",
                        "properties": {"owner": "alice"},
                    },
                    "action": {"name": "edit"},
                    "explain": True,
                },
            ]
        }
    }


class Explanation(BaseModel):
    effect: str = Field(examples=["allow"])
    reason: str = Field(examples=["matched"], description="matched | no_match")
    matched_rule: dict[str, Any] | None = Field(
        default=None,
        description="The deciding rule; absent when no rule matched (`reason: no_match`)",
        examples=[
            {
                "ptype": "p",
                "rule": ["developer", "api:schemas", "write", "allow"],
                "source": "policy.csv:14",
            }
        ],
    )
    role_path: list[str] = Field(examples=[["alice", "developer"]])
    evaluator: str = Field(examples=["generic"])


class CheckResponse(BaseModel):
    allowed: bool
    decision_id: str = Field(examples=["dec_9b1f0e3c2a7d4e5f6a1b"])
    cached: bool
    policy_revision: int = Field(examples=[3])
    explain: Explanation | None = None


class BatchCheckRequest(BaseModel):
    checks: list[CheckItem] = Field(description=f"1 to {MAX_BATCH} checks, answered in order")
    explain: StrictBool = Field(default=False, description="Default for every item")

    @model_validator(mode="before")
    @classmethod
    def _not_too_many(cls, data: Any) -> Any:
        return refuse_large_batch(data, "checks")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "checks": [
                        {"subject": "alice", "resource": "api:schemas", "action": "write"},
                        {"subject": "bob", "resource": "api:schemas", "action": "write"},
                    ]
                }
            ]
        }
    }


class BatchItemResult(BaseModel):
    allowed: bool
    decision_id: str | None = None
    cached: bool = False
    explain: Explanation | None = None
    error: dict[str, Any] | None = None


class BatchCheckResponse(BaseModel):
    results: list[BatchItemResult]
    policy_revision: int
