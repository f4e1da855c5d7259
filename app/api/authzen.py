"""OpenID AuthZEN Authorization API 1.0: evaluation, evaluations (batch), metadata.

A deny is a normal 200 answer (`{"decision": false}`); a request missing a required field
is 400; unknown fields are ignored. In `evaluations`, top-level subject/action/resource/
context are defaults that each item overrides; an item that is still incomplete gets its
own error in place, the others are answered.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator
from starlette.requests import HTTPConnection

from app.api.deps import DecisionsDep, ServicesDep, SettingsDep
from app.api.fastlane import FastRoute
from app.api.openapi import error_responses
from app.api.principals import DecisionCaller, admit_decision_caller
from app.api.schemas.common import Identifier, Properties, refuse_large_batch
from app.decisions.service import DecisionResult, DecisionService
from app.errors import (
    AuthenticationFailed,
    AuthzError,
    BatchTooLarge,
    RateLimited,
    RequestInvalid,
)
from app.observability.decision_log import set_kind
from app.policy.request import DecisionRequest, Entity
from app.services import Services

router = APIRouter(tags=["authzen"])

Semantic = Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"]


class ZEntity(BaseModel):
    type: Identifier = Field(examples=["user"])
    id: Identifier = Field(examples=["alice"])
    properties: Properties | None = None


class ZAction(BaseModel):
    name: Identifier = Field(examples=["write"])
    properties: Properties | None = None


class EvaluationRequest(BaseModel):
    subject: ZEntity
    action: ZAction
    resource: ZEntity
    context: dict[str, Any] | None = None

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "subject": {"type": "user", "id": "alice"},
                    "action": {"name": "write"},
                    "resource": {"type": "api", "id": "api:schemas"},
                }
            ]
        }
    }

    def to_request(self) -> DecisionRequest:
        return DecisionRequest(
            subject=Entity(
                self.subject.id, self.subject.type, self.subject.properties, kind="subject"
            ),
            resource=Entity(
                self.resource.id, self.resource.type, self.resource.properties, kind="resource"
            ),
            action=Entity(self.action.name, None, self.action.properties, kind="action"),
            domain=_domain(self.context),
            context=self.context or None,
            definition=_definition(self.context),
        )


def _domain(context: dict[str, Any] | None) -> str | None:
    value = (context or {}).get("domain")
    return value if isinstance(value, str) and value else None


def _definition(context: dict[str, Any] | None) -> str | None:
    """`context.definition` ("r2" or "2") selects the model's r2/p2/m2; tokens other than
    subject/resource/action/domain are read from `context` by name."""
    value = (context or {}).get("definition")
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"r?[0-9]{0,3}", value):
        raise RequestInvalid(
            'context.definition must name a request definition such as "r2"',
            details={"fields": [{"field": "context.definition", "message": "like r2"}]},
        )
    return value


class EvaluationsOptions(BaseModel):
    evaluations_semantic: Semantic = "execute_all"


class EvaluationsRequest(BaseModel):
    subject: dict[str, Any] | None = None
    action: dict[str, Any] | None = None
    resource: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    evaluations: list[dict[str, Any]] | None = None
    options: EvaluationsOptions = Field(default_factory=EvaluationsOptions)

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "subject": {"type": "user", "id": "alice"},
                    "evaluations": [
                        {
                            "action": {"name": "read"},
                            "resource": {"type": "api", "id": "api:schemas"},
                        },
                        {
                            "action": {"name": "delete"},
                            "resource": {"type": "api", "id": "api:branches:main"},
                        },
                    ],
                    "options": {"evaluations_semantic": "deny_on_first_deny"},
                }
            ]
        }
    }

    @model_validator(mode="before")
    @classmethod
    def _not_too_many(cls, data: Any) -> Any:
        return refuse_large_batch(data, "evaluations")


def _answer(result: DecisionResult) -> dict[str, Any]:
    return {
        "decision": result.allowed,
        "context": {
            "decision_id": result.decision_id,
            "policy_revision": result.decision.revision,
        },
    }


def _item_error(status: int, message: str) -> dict[str, Any]:
    return {"decision": False, "context": {"error": {"status": status, "message": message}}}


@router.post(
    "/access/v1/evaluation",
    responses=error_responses(AuthenticationFailed, RateLimited, RequestInvalid),
    summary="AuthZEN Access Evaluation",
)
async def evaluation(
    body: EvaluationRequest,
    decisions: DecisionsDep,
    caller: DecisionCaller,
    services: ServicesDep,
    request: Request,
) -> dict[str, Any]:
    await admit_decision_caller(services, request, (body.subject.id,))
    set_kind("authzen")
    return _answer(await decisions.check(body.to_request()))


@router.post(
    "/access/v1/evaluations",
    responses=error_responses(AuthenticationFailed, RateLimited, RequestInvalid, BatchTooLarge),
    summary="AuthZEN Access Evaluations (batch with defaults and short-circuit semantics)",
)
async def evaluations(
    body: EvaluationsRequest,
    decisions: DecisionsDep,
    caller: DecisionCaller,
    services: ServicesDep,
    request: Request,
) -> dict[str, Any]:
    await admit_decision_caller(services, request, _subjects(body))
    return await _evaluations(body, decisions)


def _subjects(body: EvaluationsRequest) -> list[str]:
    """The subject id each evaluation asks about (one per evaluation, at least one)."""
    default = body.subject or {}
    items = body.evaluations or [{}]
    out = []
    for item in items:
        subject = item.get("subject") or default
        ident = subject.get("id") if isinstance(subject, dict) else None
        out.append(ident if isinstance(ident, str) else "")
    return out


async def _evaluations(body: EvaluationsRequest, decisions: DecisionService) -> dict[str, Any]:
    set_kind("authzen")
    defaults = {
        "subject": body.subject,
        "action": body.action,
        "resource": body.resource,
        "context": body.context,
    }
    if not body.evaluations:
        single = _parse({k: v for k, v in defaults.items() if v is not None})
        if isinstance(single, RequestInvalid):
            raise single
        return _answer(await decisions.check(single))

    parsed = [_parse(_merge(defaults, item)) for item in body.evaluations]
    semantic = body.options.evaluations_semantic
    out: list[dict[str, Any]] = []
    if semantic == "execute_all":
        valid = [p for p in parsed if isinstance(p, DecisionRequest)]
        results = iter(await decisions.check_many(valid))
        for p in parsed:
            out.append(_render(p if isinstance(p, RequestInvalid) else next(results)))
        return {"evaluations": out}
    stop_on = semantic == "permit_on_first_permit"
    for p in parsed:
        if isinstance(p, RequestInvalid):
            out.append(_render(p))
            decided = False
        else:
            result = (await decisions.check_many([p]))[0]
            out.append(_render(result))
            decided = isinstance(result, DecisionResult) and result.allowed
        if decided == stop_on:
            break
    return {"evaluations": out}


def _merge(defaults: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in defaults.items() if v is not None}
    merged.update({k: v for k, v in item.items() if v is not None})
    return merged


def _parse(data: dict[str, Any]) -> DecisionRequest | RequestInvalid:
    try:
        return EvaluationRequest.model_validate(data).to_request()
    except RequestInvalid as exc:
        return exc
    except ValidationError as exc:
        fields = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        return RequestInvalid(
            "evaluation is missing or has invalid fields: " + ", ".join(f["field"] for f in fields),
            details={"fields": fields},
        )


def _render(result: DecisionResult | AuthzError) -> dict[str, Any]:
    if isinstance(result, DecisionResult):
        return _answer(result)
    return _item_error(400 if isinstance(result, RequestInvalid) else result.status, result.message)


@router.get(
    "/.well-known/authzen-configuration",
    summary="AuthZEN PDP metadata",
)
async def configuration(settings: SettingsDep) -> dict[str, Any]:
    base = settings.issuer
    return {
        "policy_decision_point": base,
        "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
        "access_evaluations_endpoint": f"{base}/access/v1/evaluations",
    }


# -- the fast lane (app.api.fastlane): same handlers, without FastAPI's per-request cost ------
_EVALUATION = TypeAdapter(EvaluationRequest)
_EVALUATIONS = TypeAdapter(EvaluationsRequest)


async def _evaluation_fast(
    services: Services, body: bytes, connection: HTTPConnection
) -> bytes | None:
    try:
        payload = _EVALUATION.validate_json(body)
    except ValidationError:
        return None
    await admit_decision_caller(services, connection, (payload.subject.id,))
    set_kind("authzen")
    return orjson.dumps(_answer(await services.decisions.check(payload.to_request())))


async def _evaluations_fast(
    services: Services, body: bytes, connection: HTTPConnection
) -> bytes | None:
    try:
        payload = _EVALUATIONS.validate_json(body)
    except ValidationError:
        return None
    await admit_decision_caller(services, connection, _subjects(payload))
    return orjson.dumps(await _evaluations(payload, services.decisions))


def fast_routes() -> list[FastRoute]:
    return [
        FastRoute("/access/v1/evaluation", "POST", _evaluation_fast),
        FastRoute("/access/v1/evaluations", "POST", _evaluations_fast),
    ]
