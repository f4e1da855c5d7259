"""Operator endpoints: which policy is served (`GET /api/v1/policies/status`) and the recent
decision log of this instance (`GET /api/v1/decisions`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Security

from app.api.admin import admin_api_key_scheme
from app.api.audit import SinceQuery, UntilQuery, _utc
from app.api.deps import DecisionLogDep, EngineDep
from app.api.openapi import error_responses
from app.api.principals import PolicyAdmin
from app.decisions.log import DecisionQuery
from app.errors import AuthenticationFailed, DependencyUnavailable, PermissionDenied, RequestInvalid

router = APIRouter(
    prefix="/api/v1",
    tags=["operations"],
    dependencies=[Security(admin_api_key_scheme)],
)


@router.get(
    "/policies/status",
    responses=error_responses(AuthenticationFailed, PermissionDenied),
    summary="The served policy revision, its sources, and any newer edit that was rejected",
    description=(
        "`status` is `ok`, or `newer_edit_rejected` when an edit on disk or in the database"
        " was refused after the served policy was loaded: `rejected` then names the file,"
        " line and code of the first error, and the previous policy keeps serving."
    ),
)
async def policy_status(_: PolicyAdmin, engine: EngineDep) -> dict[str, Any]:
    return engine.status.as_dict()


@router.get(
    "/decisions",
    responses=error_responses(
        AuthenticationFailed, PermissionDenied, RequestInvalid, DependencyUnavailable
    ),
    summary="Recent decisions of this instance (decision log), newest first",
    description=(
        "Needs `OMS_AUTH_DECISION_LOG_ENABLED=true`. Answers from this instance's in-memory"
        " ring (`OMS_AUTH_DECISION_LOG_RECENT` records); `oms-auth decisions` reads the"
        " JSON-lines stream file, which holds every worker's records."
    ),
)
async def recent_decisions(
    _: PolicyAdmin,
    log: DecisionLogDep,
    subject: Annotated[str | None, Query(max_length=2000)] = None,
    resource: Annotated[str | None, Query(max_length=2000)] = None,
    action: Annotated[str | None, Query(max_length=255)] = None,
    result: Annotated[Literal["allow", "deny", "error"] | None, Query()] = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    if log is None:
        raise DependencyUnavailable(
            "decision logging is off (set OMS_AUTH_DECISION_LOG_ENABLED=true)",
            details={"setting": "OMS_AUTH_DECISION_LOG_ENABLED"},
        )
    query = DecisionQuery(
        subject=subject,
        resource=resource,
        action=action,
        result=result,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
        limit=limit,
    )
    return {"items": log.recent(query)}
