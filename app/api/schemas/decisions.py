"""Request and response bodies of the decision API (`/api/v1/authz/...`)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

from app.api.schemas.common import MAX_BATCH, Identifier, Properties, refuse_large_batch
from app.policy.request import DecisionRequest, Entity


class EntityIn(BaseModel):
    """An AuthZEN-style subject or resource. Without `type` the id is the policy key as
    written; with one, the id is scoped by it (`group` / `alice` is `group:alice`)."""

    type: Identifier | None = Field(default=None, examples=["document"])
    id: Identifier = Field(examples=["doc-42"])
    properties: Properties = Field(default_factory=dict, examples=[{"owner": "alice"}])


class ActionIn(BaseModel):
    name: Identifier = Field(examples=["write"])
    properties: Properties = Field(default_factory=dict)


def to_entity(value: str | EntityIn, kind: str) -> Entity:
    if isinstance(value, str):
        return Entity(value, kind=kind)
    return Entity.typed(value.type, value.id, value.properties, kind=kind)


def to_action(value: str | ActionIn) -> Entity:
    if isinstance(value, str):
        return Entity(value, kind="action")
    return Entity(value.name, None, value.properties, kind="action")


MAX_VALUES = 12
Definition = Annotated[str, StringConstraints(pattern=r"^r?[0-9]*$", max_length=4)]
RequestValue = Identifier | StrictInt | StrictFloat | StrictBool | Properties


class CheckItem(BaseModel):
    subject: Identifier | EntityIn | None = Field(default=None, examples=["alice"])
    resource: Identifier | EntityIn | None = Field(default=None, examples=["api:schemas"])
    action: Identifier | ActionIn | None = Field(default=None, examples=["write"])
    domain: Identifier | None = Field(default=None, description="Only for models with domains")
    context: Properties | None = Field(
        default=None,
        description="Values of the model's other request tokens, by token name "
        "(`r = sub, obj, act, env` reads `context.env`)",
    )
    values: list[RequestValue] | None = Field(
        default=None,
        max_length=MAX_VALUES,
        description="Every request value by position, as Casbin's enforce(...) takes them "
        "(instead of subject/resource/action)",
        examples=[["alice", "deploy"]],
    )
    definition: Definition | None = Field(
        default=None,
        description='Which request/policy/matcher set decides: "r2" (or "2") for r2/p2/m2',
        examples=["r2"],
    )
    explain: StrictBool | None = Field(
        default=None, description="Return the matched rule, role path and effect"
    )

    @model_validator(mode="wrap")
    @classmethod
    def _values_or_fields(cls, data: Any, handler: ModelWrapValidatorHandler[CheckItem]) -> Any:
        """subject, resource and action are required unless `values` carries the request;
        each missing one is reported under its own name, next to any other field error."""
        missing: list[InitErrorDetails] = []
        if isinstance(data, dict) and data.get("values") is None:
            missing = [
                InitErrorDetails(type="missing", loc=(name,), input=data)
                for name in ("subject", "resource", "action")
                if data.get(name) is None
            ]
        try:
            item = handler(data)
        except ValidationError as exc:
            if not missing:
                raise
            found = [
                InitErrorDetails(
                    type=e["type"], loc=e["loc"], input=e["input"], ctx=e.get("ctx", {})
                )
                for e in exc.errors()
            ]
            raise ValidationError.from_exception_data(cls.__name__, [*found, *missing]) from None
        if missing:
            raise ValidationError.from_exception_data(cls.__name__, missing)
        named = (item.subject, item.resource, item.action, item.domain)
        if item.values is not None and any(v is not None for v in named):
            raise ValueError("give either `values` or subject/resource/action/domain")
        return item

    def to_request(self) -> DecisionRequest:
        if self.values is not None:
            return DecisionRequest.positional(self.values, definition=self.definition)
        assert self.subject is not None and self.resource is not None
        assert self.action is not None
        return DecisionRequest(
            subject=to_entity(self.subject, "subject"),
            resource=to_entity(self.resource, "resource"),
            action=to_action(self.action),
            domain=self.domain,
            context=self.context or None,
            definition=self.definition,
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
    missing_properties: list[str] = Field(
        default_factory=list,
        examples=[["resource.ownerID"]],
        description="Properties a rule read that neither the request nor the entity store "
        "gave; each such rule did not match",
    )
    definition: dict[str, str] | None = Field(
        default=None,
        description="The request/policy/matcher definitions that decided",
        examples=[{"request": "r", "policy": "p", "matcher": "m"}],
    )


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


_NOT_PLAIN = ("values", "context", "definition")


def _plain_id(value: object) -> str | None:
    """`value` when it is what `Identifier` accepts and needs no further thought (a printable
    string of 1-255 characters), else None."""
    if type(value) is str and 0 < len(value) <= 255 and value.isprintable():
        return value
    return None


def parse_plain_batch(body: bytes) -> list[DecisionRequest] | None:
    """A `BatchCheckRequest` body straight into the engine's requests, or None.

    The common batch (ids as strings, no domain object, no explanations) is read with orjson
    and checked field by field with `Identifier`'s rules, without a model per item: about a
    third of a 1000-check batch's time went into building those. None means "not the plain
    case": anything else (entity objects, explanations, a bad or oversized item) goes through
    `BatchCheckRequest`, so errors keep their exact envelopes and field errors.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or data.get("explain", False) is not False:
        return None
    checks = data.get("checks")
    if type(checks) is not list or len(checks) > MAX_BATCH:
        return None
    out: list[DecisionRequest] = []
    append = out.append
    # One entity per distinct (kind, id) in the batch: they are immutable, and building one
    # costs more than checking it (a batch repeats its action, often its subjects too).
    entities: dict[tuple[str, str], Entity] = {}

    def entity(value: str, kind: str) -> Entity:
        key = (kind, value)
        found = entities.get(key)
        if found is None:
            found = entities[key] = Entity(value, kind=kind)
        return found

    for item in checks:
        if type(item) is not dict or item.get("explain") not in (None, False):
            return None
        if any(item.get(name) is not None for name in _NOT_PLAIN):
            return None  # request values by position, context tokens, a second definition
        subject = _plain_id(item.get("subject"))
        resource = _plain_id(item.get("resource"))
        action = _plain_id(item.get("action"))
        if subject is None or resource is None or action is None:
            return None
        domain = item.get("domain")
        if domain is not None and _plain_id(domain) is None:
            return None
        append(
            DecisionRequest(
                entity(subject, "subject"),
                entity(resource, "resource"),
                entity(action, "action"),
                domain,
            )
        )
    return out
