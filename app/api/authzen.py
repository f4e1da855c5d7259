"""OpenID AuthZEN Authorization API 1.0: evaluation, evaluations (batch), metadata.

A deny is a normal 200 answer (`{"decision": false}`); a request missing a required field
is 400; unknown fields are ignored. In `evaluations`, top-level subject/action/resource/
context are defaults that each item overrides; an item that is still incomplete gets its
own error in place, the others are answered. This module reads and renders the wire format;
the semantics (domains, definitions, short-circuits, tenants) are `app.decisions.authzen`'s.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator
from starlette.requests import HTTPConnection

from app.adapters.http.callers import Callers
from app.adapters.http.responses import http_status
from app.api.deps import CallersDep, DecisionsDep, FastPorts, SettingsDep
from app.api.fastlane import FastRoute
from app.api.openapi import error_responses
from app.api.principals import DecisionCaller, QueryCaller, admit_decision_caller
from app.api.routing import StrictJSONRoute
from app.api.schemas.common import Identifier, Properties, refuse_large_batch
from app.decisions.authzen import (
    Answer,
    Item,
    Semantic,
    definition_of,
    domain_of,
    evaluate_all,
    evaluations_of,
    in_tenant,
    require_tenant,
)
from app.decisions.log import set_kind
from app.decisions.service import DecisionResult, DecisionService
from app.errors import (
    AuthenticationFailed,
    BatchTooLarge,
    NotFound,
    PermissionDenied,
    RateLimited,
    RequestInvalid,
)
from app.policy.request import DecisionRequest, Entity
from app.policy.search import (
    MAX_LIMIT,
    Page,
    search_actions,
    search_resources,
    search_subjects,
)
from app.policy.snapshot import PolicySnapshot
from app.security.principal import Principal

router = APIRouter(route_class=StrictJSONRoute, tags=["authzen"])


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
            subject=Entity.typed(
                self.subject.type, self.subject.id, self.subject.properties, kind="subject"
            ),
            resource=Entity.typed(
                self.resource.type, self.resource.id, self.resource.properties, kind="resource"
            ),
            action=Entity(self.action.name, None, self.action.properties, kind="action"),
            domain=domain_of(self.context),
            context=self.context or None,
            definition=definition_of(self.context),
        )


class EvaluationsOptions(BaseModel):
    evaluations_semantic: Semantic = "execute_all"
    include_context: bool | None = Field(
        default=None,
        description="Add `context` (decision_id, policy_revision) to each item; default: "
        "OMS_AUTH_AUTHZEN_ITEM_CONTEXT. Item errors always carry their context.",
    )


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


def _answer(result: DecisionResult, *, context: bool = True) -> dict[str, Any]:
    if not context:
        return {"decision": result.allowed}
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
    responses=error_responses(AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid),
    summary="AuthZEN Access Evaluation",
)
async def evaluation(
    body: EvaluationRequest,
    decisions: DecisionsDep,
    caller: DecisionCaller,
    callers: CallersDep,
    request: Request,
) -> dict[str, Any]:
    return await _evaluate(body, decisions, callers, request)


async def _evaluate(
    body: EvaluationRequest,
    decisions: DecisionService,
    callers: Callers,
    connection: HTTPConnection,
    tenant: str | None = None,
) -> dict[str, Any]:
    """One evaluation; in a tenant (404 when unknown), the tenant is its domain."""
    if tenant is not None:
        require_tenant(decisions.snapshot, tenant)
    await admit_decision_caller(callers, connection, (body.subject.id,))
    set_kind("authzen")
    if tenant is not None:
        body.context = in_tenant(body.context, tenant)
    return _answer(await decisions.check(body.to_request()))


@router.post(
    "/access/v1/evaluations",
    responses=error_responses(
        AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid, BatchTooLarge
    ),
    summary="AuthZEN Access Evaluations (batch with defaults and short-circuit semantics)",
)
async def evaluations(
    body: EvaluationsRequest,
    decisions: DecisionsDep,
    caller: DecisionCaller,
    callers: CallersDep,
    settings: SettingsDep,
    request: Request,
) -> dict[str, Any]:
    item_context = settings.authzen_item_context
    return await _evaluate_many(body, decisions, callers, request, item_context=item_context)


async def _evaluate_many(
    body: EvaluationsRequest,
    decisions: DecisionService,
    callers: Callers,
    connection: HTTPConnection,
    *,
    item_context: bool,
    tenant: str | None = None,
) -> dict[str, Any]:
    """A batch of evaluations; in a tenant (404 when unknown), no item can leave it."""
    if tenant is not None:
        require_tenant(decisions.snapshot, tenant)
    await admit_decision_caller(callers, connection, _subjects(body))
    return await _evaluations(body, decisions, item_context=item_context, tenant=tenant)


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


async def _evaluations(
    body: EvaluationsRequest,
    decisions: DecisionService,
    *,
    item_context: bool = True,
    tenant: str | None = None,
) -> dict[str, Any]:
    context = body.options.include_context
    if context is None:
        context = item_context
    set_kind("authzen")
    defaults = {
        "subject": body.subject,
        "action": body.action,
        "resource": body.resource,
        "context": body.context,
    }
    parsed = [_parse(each) for each in evaluations_of(defaults, body.evaluations, tenant=tenant)]
    if not body.evaluations:  # one evaluation, answered as such
        if isinstance(parsed[0], RequestInvalid):
            raise parsed[0]
        return _answer(await decisions.check(parsed[0]))
    answers = await evaluate_all(decisions, parsed, body.options.evaluations_semantic)
    return {"evaluations": [_render(answer, context) for answer in answers]}


def _parse(data: dict[str, Any]) -> Item:
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


def _render(result: Answer, context: bool = True) -> dict[str, Any]:
    if isinstance(result, DecisionResult):
        return _answer(result, context=context)
    status = 400 if isinstance(result, RequestInvalid) else http_status(result)
    return _item_error(status, result.message)


def _metadata(base: str) -> dict[str, Any]:
    return {
        "policy_decision_point": base,
        "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
        "access_evaluations_endpoint": f"{base}/access/v1/evaluations",
        "search_subject_endpoint": f"{base}/access/v1/search/subject",
        "search_resource_endpoint": f"{base}/access/v1/search/resource",
        "search_action_endpoint": f"{base}/access/v1/search/action",
    }


@router.get(
    "/.well-known/authzen-configuration",
    summary="AuthZEN PDP metadata",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": _metadata("https://auth.example.com"),
                }
            }
        }
    },
)
async def configuration(settings: SettingsDep) -> dict[str, Any]:
    return _metadata(settings.issuer)


# -- search (AuthZEN 1.0 section 8) -----------------------------------------------------------
class SearchEntity(BaseModel):
    """A subject or resource in a search request: `id` is left out for what is searched."""

    type: Identifier = Field(examples=["user"])
    id: Identifier | None = Field(default=None, examples=["alice"])
    properties: Properties | None = None


class PageIn(BaseModel):
    token: str | None = Field(default=None, max_length=1024, description="next_token of a page")
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="results per page")


class SearchRequest(BaseModel):
    subject: SearchEntity
    action: ZAction | None = None
    resource: SearchEntity
    context: dict[str, Any] | None = None
    page: PageIn = Field(default_factory=PageIn)


def _entity(value: SearchEntity, kind: str, field: str) -> Entity:
    if value.id is None:
        raise RequestInvalid(
            f"{field}.id is required for this search",
            details={"fields": [{"field": f"{field}.id", "message": "required"}]},
        )
    return Entity.typed(value.type, value.id, value.properties, kind=kind)


def _action(body: SearchRequest) -> Entity:
    if body.action is None:
        raise RequestInvalid(
            "action is required for this search",
            details={"fields": [{"field": "action", "message": "required"}]},
        )
    return Entity(body.action.name, None, body.action.properties, kind="action")


def _searched(snapshot: PolicySnapshot, page: Page) -> dict[str, Any]:
    out = page.as_dict()
    out["context"] = {"policy_revision": snapshot.revision}
    return out


_SEARCH_ERRORS = error_responses(
    AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid
)
_SUBJECT_EXAMPLE = {
    "subject": {"type": "user"},
    "action": {"name": "view"},
    "resource": {"type": "record", "id": "101"},
}
_RESOURCE_EXAMPLE = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "edit"},
    "resource": {"type": "record"},
    "page": {"limit": 2},
}
_ACTION_EXAMPLE = {
    "subject": {"type": "user", "id": "dan"},
    "resource": {"type": "record", "id": "110"},
}


def _example(request: dict[str, Any], results: list[dict[str, str]], token: str = "") -> Any:
    return {
        "requestBody": {"content": {"application/json": {"example": request}}},
        "responses": {
            "200": {
                "content": {
                    "application/json": {
                        "example": {
                            "results": results,
                            "page": {"next_token": token, "count": len(results), "total": 4},
                            "context": {"policy_revision": 3},
                        }
                    }
                }
            }
        },
    }


@router.post(
    "/access/v1/search/subject",
    responses=_SEARCH_ERRORS,
    summary="AuthZEN Subject Search: which subjects of a type may do `action` on `resource`",
    openapi_extra=_example(
        _SUBJECT_EXAMPLE,
        [{"type": "user", "id": n} for n in ("alice", "bob", "carol", "dan")],
    ),
)
async def search_subject(
    body: SearchRequest, decisions: DecisionsDep, caller: QueryCaller, callers: CallersDep
) -> dict[str, Any]:
    return await _search("subject", body, decisions, callers, caller)


async def _search(
    kind: str,
    body: SearchRequest,
    decisions: DecisionService,
    callers: Callers,
    caller: Principal | None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """A search, charged as one check; in a tenant (404 when unknown), its domain."""
    snapshot = decisions.snapshot
    if tenant is not None:
        require_tenant(snapshot, tenant)
    await callers.charge(caller, 1)
    domain = domain_of(body.context) if tenant is None else tenant
    result: dict[str, Any] = _SEARCHES[kind](body, snapshot, domain)
    return result


def _subject_search(
    body: SearchRequest, snapshot: PolicySnapshot, domain: str | None
) -> dict[str, Any]:
    page = search_subjects(
        snapshot,
        subject_type=body.subject.type,
        resource=_entity(body.resource, "resource", "resource"),
        action=_action(body),
        domain=domain,
        token=body.page.token,
        limit=body.page.limit,
    )
    return _searched(snapshot, page)


@router.post(
    "/access/v1/search/resource",
    responses=_SEARCH_ERRORS,
    summary="AuthZEN Resource Search: which resources of a type `subject` may do `action` on",
    openapi_extra=_example(
        _RESOURCE_EXAMPLE,
        [{"type": "record", "id": "101"}, {"type": "record", "id": "107"}],
        token="eyJvIjoyLCJjIjoiOWQ3ZjE2ZTBhYjQyNzEzNCJ9",  # noqa: S106 (a page token)
    ),
)
async def search_resource(
    body: SearchRequest, decisions: DecisionsDep, caller: QueryCaller, callers: CallersDep
) -> dict[str, Any]:
    return await _search("resource", body, decisions, callers, caller)


def _resource_search(
    body: SearchRequest, snapshot: PolicySnapshot, domain: str | None
) -> dict[str, Any]:
    page = search_resources(
        snapshot,
        subject=_entity(body.subject, "subject", "subject"),
        action=_action(body),
        resource_type=body.resource.type,
        domain=domain,
        token=body.page.token,
        limit=body.page.limit,
    )
    return _searched(snapshot, page)


@router.post(
    "/access/v1/search/action",
    responses=_SEARCH_ERRORS,
    summary="AuthZEN Action Search: which actions `subject` may perform on `resource`",
    openapi_extra=_example(
        _ACTION_EXAMPLE, [{"name": "delete"}, {"name": "edit"}, {"name": "view"}]
    ),
)
async def search_action(
    body: SearchRequest, decisions: DecisionsDep, caller: QueryCaller, callers: CallersDep
) -> dict[str, Any]:
    return await _search("action", body, decisions, callers, caller)


def _action_search(
    body: SearchRequest, snapshot: PolicySnapshot, domain: str | None
) -> dict[str, Any]:
    page = search_actions(
        snapshot,
        subject=_entity(body.subject, "subject", "subject"),
        resource=_entity(body.resource, "resource", "resource"),
        domain=domain,
        token=body.page.token,
        limit=body.page.limit,
    )
    return _searched(snapshot, page)


_SEARCHES = {"subject": _subject_search, "resource": _resource_search, "action": _action_search}


# -- tenants: every domain of a domain model is a PDP of its own ------------------------------
TenantPath = Annotated[
    Identifier, Path(description="A domain of the policy", examples=["tenant-a"])
]


@router.get(
    "/.well-known/authzen-configuration/tenants/{tenant}",
    summary="AuthZEN PDP metadata of one tenant (a domain of the policy)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": _metadata("https://auth.example.com/tenants/tenant-a")
                }
            }
        },
        **error_responses(NotFound),
    },
)
async def tenant_configuration(
    tenant: TenantPath, settings: SettingsDep, decisions: DecisionsDep
) -> dict[str, Any]:
    require_tenant(decisions.snapshot, tenant)
    return _metadata(f"{settings.issuer}/tenants/{tenant}")


@router.post(
    "/tenants/{tenant}/access/v1/evaluation",
    responses=error_responses(
        AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid, NotFound
    ),
    summary="AuthZEN Access Evaluation in one tenant (the domain is the tenant)",
)
async def tenant_evaluation(
    tenant: TenantPath,
    body: EvaluationRequest,
    decisions: DecisionsDep,
    caller: DecisionCaller,
    callers: CallersDep,
    request: Request,
) -> dict[str, Any]:
    return await _evaluate(body, decisions, callers, request, tenant)


@router.post(
    "/tenants/{tenant}/access/v1/evaluations",
    responses=error_responses(
        AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid, NotFound
    ),
    summary="AuthZEN Access Evaluations in one tenant (items cannot leave it)",
)
async def tenant_evaluations(
    tenant: TenantPath,
    body: EvaluationsRequest,
    decisions: DecisionsDep,
    caller: DecisionCaller,
    callers: CallersDep,
    settings: SettingsDep,
    request: Request,
) -> dict[str, Any]:
    item_context = settings.authzen_item_context
    return await _evaluate_many(
        body, decisions, callers, request, item_context=item_context, tenant=tenant
    )


def _tenant_search(kind: str) -> Any:
    async def handler(
        tenant: TenantPath,
        body: SearchRequest,
        decisions: DecisionsDep,
        caller: QueryCaller,
        callers: CallersDep,
    ) -> dict[str, Any]:
        return await _search(kind, body, decisions, callers, caller, tenant)

    return handler


for _kind in ("subject", "resource", "action"):
    router.add_api_route(
        f"/tenants/{{tenant}}/access/v1/search/{_kind}",
        _tenant_search(_kind),
        methods=["POST"],
        responses=error_responses(
            AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid, NotFound
        ),
        summary=f"AuthZEN {_kind.title()} Search in one tenant",
        name=f"tenant_search_{_kind}",
    )


# -- the fast lane (app.api.fastlane): same handlers, without FastAPI's per-request cost ------
_EVALUATION = TypeAdapter(EvaluationRequest)
_EVALUATIONS = TypeAdapter(EvaluationsRequest)


async def _evaluation_fast(
    ports: FastPorts, body: bytes, connection: HTTPConnection
) -> bytes | None:
    try:
        # orjson parses, as on the documented route (app.api.routing): same JSON accepted
        payload = _EVALUATION.validate_python(orjson.loads(body))
    except (ValidationError, orjson.JSONDecodeError):
        return None
    return orjson.dumps(await _evaluate(payload, ports.decisions, ports.callers, connection))


async def _evaluations_fast(
    ports: FastPorts, body: bytes, connection: HTTPConnection
) -> bytes | None:
    try:
        # orjson parses, as on the documented route (app.api.routing): same JSON accepted
        payload = _EVALUATIONS.validate_python(orjson.loads(body))
    except (ValidationError, orjson.JSONDecodeError):
        return None
    item_context = ports.authzen_item_context
    answer = await _evaluate_many(
        payload, ports.decisions, ports.callers, connection, item_context=item_context
    )
    return orjson.dumps(answer)


def fast_routes() -> list[FastRoute]:
    return [
        FastRoute("/access/v1/evaluation", "POST", _evaluation_fast),
        FastRoute("/access/v1/evaluations", "POST", _evaluations_fast),
    ]
