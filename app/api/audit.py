"""The audit trail over HTTP: `GET /api/v1/audit`, newest first, filtered and paged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Security
from fastapi.responses import StreamingResponse

from app.api.admin import admin_api_key_scheme
from app.api.deps import AuditQueriesDep
from app.api.openapi import error_responses
from app.api.principals import PolicyAdmin
from app.api.routing import StrictJSONRoute
from app.api.schemas.admin import AuditPageOut
from app.errors import AuthenticationFailed, PermissionDenied, RequestInvalid
from app.store.audit_log import MAX_PAGE, AuditQuery

NDJSON = "application/x-ndjson"
_EXPORT_EXAMPLE = (
    '{"id": 41, "occurred_at": "2026-01-05T09:30:00Z", "actor": "admin", '
    '"action": "policy.rule_added", "source": "api", "request_id": "req_0a1b2c3d", '
    '"target": "p:viewer,doc:*,read", "before": null, "after": {"ptype": "p", '
    '"rule": ["viewer", "doc:*", "read"]}, "details": {}}\n'
    '{"id": 42, "occurred_at": "2026-01-05T09:31:12Z", "actor": "dora", '
    '"action": "auth.login_failed", "source": "api", "request_id": "req_4e5f6a7b", '
    '"target": "user:dora", "before": null, "after": null, "details": {"reason": "bad_password"}}\n'
)

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/api/v1",
    tags=["policy administration"],
    dependencies=[Security(admin_api_key_scheme)],
)


ActorQuery = Annotated[str | None, Query(max_length=255)]
ActionQuery = Annotated[
    str | None, Query(max_length=64, description="Exact, or a prefix ending in *")
]
SinceQuery = Annotated[datetime | None, Query(description="Inclusive, ISO 8601 with zone")]
UntilQuery = Annotated[datetime | None, Query(description="Exclusive, ISO 8601 with zone")]


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise RequestInvalid(
            f"{field} needs a time zone (e.g. 2026-11-25T10:00:00Z)",
            details={"fields": [{"field": field, "message": "time zone required"}]},
        )
    return value.astimezone(UTC)


@router.get(
    "/audit",
    response_model=AuditPageOut,
    responses=error_responses(AuthenticationFailed, PermissionDenied, RequestInvalid),
    summary="Audit events (policy changes, reloads, rejections), newest first",
)
async def audit_events(
    _: PolicyAdmin,
    audit: AuditQueriesDep,
    actor: ActorQuery = None,
    action: ActionQuery = None,
    source: Annotated[str | None, Query(max_length=16, examples=["api"])] = None,
    target: Annotated[str | None, Query(max_length=2000)] = None,
    subject: Annotated[
        str | None,
        Query(max_length=2000, description="Whom the event is about (`user:alice`, `alice`)"),
    ] = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    cursor: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="`next_cursor` of a page")
    ] = None,
) -> dict[str, Any]:
    query = AuditQuery(
        actor=actor,
        action=action,
        source=source,
        target=target,
        subject=subject,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
        before_id=cursor,
        limit=limit,
        offset=offset,
    )
    page = await audit.page(query)
    return {
        "items": [e.as_dict() for e in page.items],
        "total": page.total,
        "next_cursor": page.next_cursor,
    }


@router.get(
    "/audit/export",
    responses={
        200: {
            "description": "One event per line, oldest first",
            "content": {NDJSON: {"example": _EXPORT_EXAMPLE}},
        },
        **error_responses(AuthenticationFailed, PermissionDenied, RequestInvalid),
    },
    response_class=StreamingResponse,
    summary="Export audit events as JSON lines (oldest first)",
)
async def audit_export(
    _: PolicyAdmin,
    audit: AuditQueriesDep,
    actor: ActorQuery = None,
    action: ActionQuery = None,
    subject: Annotated[str | None, Query(max_length=2000)] = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
) -> StreamingResponse:
    query = AuditQuery(
        actor=actor,
        action=action,
        subject=subject,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
    )

    async def lines() -> AsyncIterator[bytes]:
        async for entry in audit.export(query):
            yield orjson.dumps(entry.as_dict()) + b"\n"

    return StreamingResponse(lines(), media_type=NDJSON)
