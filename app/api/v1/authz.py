"""Decision endpoints: one check, a batch of checks, and reverse queries."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import TypeAdapter, ValidationError
from starlette.requests import HTTPConnection

from app.adapters.http.responses import envelope
from app.api.deps import CallersDep, DecisionsDep, EngineDep, FastPorts
from app.api.fastlane import FastRoute
from app.api.openapi import error_responses
from app.api.principals import DecisionCaller, QueryCaller, admit_decision_caller
from app.api.routing import StrictJSONRoute
from app.api.schemas.common import Identifier
from app.api.schemas.decisions import (
    BatchCheckRequest,
    BatchCheckResponse,
    CheckItem,
    CheckRequest,
    CheckResponse,
    parse_plain_batch,
)
from app.decisions.service import DecisionResult, DecisionService
from app.errors import (
    AuthenticationFailed,
    BatchTooLarge,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    RequestInvalid,
)
from app.policy.queries import objects_for, subjects_for
from app.policy.request import DecisionRequest, Entity
from app.policy.search import MAX_LIMIT, search_resources, search_subjects

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/authz", tags=["decisions"])


@router.post(
    "/check",
    response_model=CheckResponse,
    response_model_exclude_none=True,
    responses=error_responses(
        AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid, PayloadTooLarge
    ),
    summary="Decide one request",
)
async def check(
    body: CheckRequest,
    decisions: DecisionsDep,
    caller: DecisionCaller,
    callers: CallersDep,
    request: Request,
) -> dict[str, Any]:
    await admit_decision_caller(callers, request, (_subject_of(body),))
    return await _check(body, decisions)


def _subject_of(item: CheckItem) -> str:
    """Whom the check asks about (the first value when the request is given by position)."""
    if item.subject is None:
        return str(item.values[0]) if item.values else ""
    return item.subject if isinstance(item.subject, str) else item.subject.id


async def _check(body: CheckRequest, decisions: DecisionService) -> dict[str, Any]:
    explain = bool(body.explain)
    result = await decisions.check(body.to_request(), explain=explain)
    return result.as_dict(explain=explain)


@router.post(
    "/check/batch",
    response_model=BatchCheckResponse,
    response_model_exclude_none=True,
    responses=error_responses(
        AuthenticationFailed,
        PermissionDenied,
        RateLimited,
        RequestInvalid,
        BatchTooLarge,
        PayloadTooLarge,
    ),
    summary="Decide up to 1000 requests in one pass, results in request order",
)
async def check_batch(
    body: BatchCheckRequest,
    decisions: DecisionsDep,
    caller: DecisionCaller,
    callers: CallersDep,
    request: Request,
) -> dict[str, Any]:
    await admit_decision_caller(callers, request, [_subject_of(c) for c in body.checks])
    return await _batch(body, decisions)


async def _batch(body: BatchCheckRequest, decisions: DecisionService) -> dict[str, Any]:
    requests = [item.to_request() for item in body.checks]
    explain_any = body.explain or any(item.explain for item in body.checks)
    batch = await decisions.check_many(requests, explain=explain_any)
    out = []
    for item, result in zip(body.checks, batch.results, strict=True):
        if isinstance(result, DecisionResult):
            explain = body.explain if item.explain is None else item.explain
            entry = result.as_dict(explain=explain)
            entry.pop("policy_revision")
            out.append(entry)
        else:
            error = envelope(result.code, result.message, result.details)
            out.append({"allowed": False, "cached": False, **error})
    return {"results": out, "policy_revision": batch.revision}


_LIMIT = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="results per page")]
_TOKEN = Annotated[
    str | None, Query(max_length=1024, description="`next_page_token` of the previous page")
]
_TYPE = Annotated[Identifier | None, Query(description="entity type (default: any type)")]


@router.get(
    "/subjects",
    tags=["permissions"],
    responses=error_responses(AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid),
    summary="Who may perform `action` on `resource`: typed subjects, paged",
    response_description=(
        "`subjects`: typed and paged, on any model (stored entities and rule subjects, each "
        "confirmed by a decision); `users`/`roles`: the rule subjects as before (models "
        "whose rules have sub, obj and act)"
    ),
)
async def subjects(
    engine: EngineDep,
    caller: QueryCaller,
    resource: Annotated[Identifier, Query(examples=["api:schemas"])],
    action: Annotated[Identifier, Query(examples=["write"])],
    domain: Annotated[Identifier | None, Query()] = None,
    resource_type: _TYPE = None,
    subject_type: _TYPE = None,
    limit: _LIMIT = 100,
    page_token: _TOKEN = None,
) -> dict[str, Any]:
    snapshot = engine.snapshot
    target = Entity.typed(resource_type, resource, kind="resource")
    page = search_subjects(
        snapshot,
        subject_type=subject_type,
        resource=target,
        action=Entity(action, kind="action"),
        domain=domain,
        token=page_token,
        limit=limit,
    )
    answer = subjects_for(snapshot, resource=str(target), action=action, domain=domain)
    return {
        "resource": resource,
        "action": action,
        "subjects": page.results,
        "next_page_token": page.next_token or None,
        "total": page.total,
        "users": answer.users,
        "roles": answer.roles,
        "policy_revision": snapshot.revision,
    }


@router.get(
    "/objects",
    tags=["permissions"],
    responses=error_responses(AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid),
    summary="Which resources `subject` may perform `action` on: typed resources, paged",
    response_description=(
        "`resources`: typed, concrete and paged, on any model; `allowed`/`denied`: the rule "
        "resources as written, patterns included (models whose rules have sub, obj, act)"
    ),
)
async def objects(
    engine: EngineDep,
    caller: QueryCaller,
    subject: Annotated[Identifier, Query(examples=["alice"])],
    action: Annotated[Identifier, Query(examples=["write"])],
    domain: Annotated[Identifier | None, Query()] = None,
    subject_type: _TYPE = None,
    resource_type: _TYPE = None,
    limit: _LIMIT = 100,
    page_token: _TOKEN = None,
) -> dict[str, Any]:
    snapshot = engine.snapshot
    who = Entity.typed(subject_type, subject, kind="subject")
    page = search_resources(
        snapshot,
        subject=who,
        action=Entity(action, kind="action"),
        resource_type=resource_type,
        domain=domain,
        token=page_token,
        limit=limit,
    )
    answer = objects_for(snapshot, subject=str(who), action=action, domain=domain)
    return {
        "subject": subject,
        "action": action,
        "resources": page.results,
        "next_page_token": page.next_token or None,
        "total": page.total,
        "allowed": answer.allowed,
        "denied": answer.denied,
        "policy_revision": snapshot.revision,
    }


# -- the fast lane (app.api.fastlane): same handlers, without FastAPI's per-request cost ------
_CHECK = TypeAdapter(CheckRequest)
_BATCH = TypeAdapter(BatchCheckRequest)


def _dump(content: dict[str, Any]) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


async def _check_fast(ports: FastPorts, body: bytes, connection: HTTPConnection) -> bytes | None:
    try:
        # orjson parses, as on the documented route (app.api.routing): same JSON accepted
        payload = _CHECK.validate_python(orjson.loads(body))
    except (ValidationError, orjson.JSONDecodeError):
        return None
    if payload.explain:
        return None  # explanations go through the response model, which drops empty fields
    await admit_decision_caller(ports.callers, connection, (_subject_of(payload),))
    return _dump(await _check(payload, ports.decisions))


async def _batch_fast(ports: FastPorts, body: bytes, connection: HTTPConnection) -> bytes | None:
    plain = parse_plain_batch(body)
    if plain is not None:
        await admit_decision_caller(ports.callers, connection, [r.subject for r in plain])
        return _dump(await _plain_batch(plain, ports.decisions))
    try:
        # orjson parses, as on the documented route (app.api.routing): same JSON accepted
        payload = _BATCH.validate_python(orjson.loads(body))
    except (ValidationError, orjson.JSONDecodeError):
        return None
    if payload.explain or any(item.explain for item in payload.checks):
        return None
    await admit_decision_caller(ports.callers, connection, [_subject_of(c) for c in payload.checks])
    return _dump(await _batch(payload, ports.decisions))


async def _plain_batch(
    requests: list[DecisionRequest], decisions: DecisionService
) -> dict[str, Any]:
    """`_batch` for a batch of plain items without explanations (see `parse_plain_batch`)."""
    batch = await decisions.check_many(requests)
    out: list[dict[str, Any]] = []
    append = out.append
    for result in batch.results:
        if isinstance(result, DecisionResult):
            append(
                {
                    "allowed": result.decision.allowed,
                    "decision_id": result.decision_id,
                    "cached": result.cached,
                }
            )
        else:
            error = envelope(result.code, result.message, result.details)
            append({"allowed": False, "cached": False, **error})
    return {"results": out, "policy_revision": batch.revision}


def fast_routes() -> list[FastRoute]:
    return [
        FastRoute("/api/v1/authz/check", "POST", _check_fast),
        FastRoute("/api/v1/authz/check/batch", "POST", _batch_fast),
    ]
