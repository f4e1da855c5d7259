"""Policy administration over HTTP: list, add and remove rules and role members, reload.

Every route needs a policy administrator (`PolicyAdmin`: an admin, the
`authz:policies:write` scope, or the admin API key). The work happens in
`app.administration`; this module only parses and renders.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Security
from fastapi.security import APIKeyHeader
from starlette.responses import Response

from app.adapters.http.responses import FastJSONResponse
from app.adapters.http.writes import AdminWrite
from app.administration.listing import RuleFilter, list_rules, role_members
from app.administration.policies import WriteResult
from app.api.deps import EngineDep, PolicyAdministrationDep, ReloaderDep, WritesDep
from app.api.openapi import error_responses
from app.api.principals import PolicyAdmin
from app.api.routing import StrictJSONRoute
from app.api.schemas.admin import MembersOut, ReloadOut, RemoveOut, RuleIn, RulePage, WriteOut
from app.api.schemas.common import Identifier
from app.errors import (
    AuthenticationFailed,
    Conflict,
    IdempotencyMismatch,
    InvalidPolicy,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RequestInvalid,
    RoleNotFound,
)
from app.observability.logging import request_id_var

# For the OpenAPI document only ("Authorize" in /docs); the principal resolvers authenticate.
admin_api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    scheme_name="AdminApiKey",
    description="OMS_AUTH_ADMIN_API_KEY: policy administration until tokens are used",
    auto_error=False,
)

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/api/v1",
    tags=["policy administration"],
    dependencies=[Security(admin_api_key_scheme)],
)

_AUTH = (AuthenticationFailed, PermissionDenied)


async def admin_write(request: Request, principal: PolicyAdmin, writes: WritesDep) -> AdminWrite:
    return AdminWrite(request, principal, writes)


AdminWriteDep = Annotated[AdminWrite, Depends(admin_write)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Retries with the same key and request get the first answer again",
    ),
]
DomainQuery = Annotated[Identifier | None, Query(description="For models with domains")]
RolePath = Annotated[Identifier, Path()]
SubjectPath = Annotated[Identifier, Path()]


@router.get(
    "/policies",
    response_model=RulePage,
    responses=error_responses(*_AUTH, RequestInvalid),
    summary="Live rules (files and database), filtered and paged",
)
async def get_policies(
    _: PolicyAdmin,
    engine: EngineDep,
    ptype: Annotated[str | None, Query(max_length=16, examples=["p"])] = None,
    subject: Annotated[Identifier | None, Query(description="p: subject; g: member")] = None,
    resource: Annotated[Identifier | None, Query()] = None,
    action: Annotated[Identifier | None, Query()] = None,
    domain: DomainQuery = None,
    source: Annotated[
        str | None, Query(max_length=255, description="file, db, or a file name")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> dict[str, Any]:
    flt = RuleFilter(ptype, subject, resource, action, domain, source)
    return list_rules(engine.snapshot, flt, limit=limit, offset=offset)


def _written(result: WriteResult, status: int = 200) -> Response:
    return FastJSONResponse(WriteOut.of(result).model_dump(mode="json"), status_code=status)


def _created(result: WriteResult) -> Response:
    """201 when the change created something, 200 when it was there already."""
    return _written(result, 201 if result.created else 200)


def _removed(result: WriteResult) -> Response:
    """A removal answers `removed`, never `created`."""
    return FastJSONResponse(RemoveOut.of(result).model_dump(mode="json"), status_code=200)


class _By(TypedDict):
    actor: str
    request_id: str | None


def _by(write: AdminWrite) -> _By:
    """Who makes the change, for the audit trail."""
    return {"actor": write.principal.subject, "request_id": request_id_var.get()}


@router.post(
    "/policies",
    status_code=201,
    response_model=WriteOut,
    responses=error_responses(
        *_AUTH, InvalidPolicy, Conflict, RequestInvalid, PayloadTooLarge, IdempotencyMismatch
    ),
    summary="Add a rule (stored in the database, audited, live at once)",
)
async def add_policy(
    body: RuleIn,
    write: AdminWriteDep,
    admin: PolicyAdministrationDep,
    _key: IdempotencyKeyHeader = None,
) -> Response:
    return await write.run(
        lambda: admin.add_rule(body.ptype, body.rule, **_by(write)), lambda r: _written(r, 201)
    )


@router.delete(
    "/policies",
    response_model=RemoveOut,
    responses=error_responses(
        *_AUTH, InvalidPolicy, NotFound, Conflict, RequestInvalid, IdempotencyMismatch
    ),
    summary="Remove a stored rule (rules from files are edited in the files)",
)
async def remove_policy(
    body: RuleIn,
    write: AdminWriteDep,
    admin: PolicyAdministrationDep,
    _key: IdempotencyKeyHeader = None,
) -> Response:
    return await write.run(lambda: admin.remove_rule(body.ptype, body.rule, **_by(write)), _removed)


@router.get(
    "/roles/{role}/members",
    response_model=MembersOut,
    responses=error_responses(*_AUTH, RoleNotFound, RequestInvalid),
    summary="Who holds a role: direct members and everyone who inherits it",
)
async def get_members(
    _: PolicyAdmin,
    engine: EngineDep,
    role: RolePath,
    domain: DomainQuery = None,
) -> dict[str, Any]:
    return role_members(engine.snapshot, role, domain)


@router.put(
    "/roles/{role}/members/{subject}",
    response_model=WriteOut,
    responses={
        201: {"description": "Membership created", "model": WriteOut},
        **error_responses(*_AUTH, RoleNotFound, InvalidPolicy, Conflict, RequestInvalid),
    },
    summary="Give `subject` the role (idempotent: 200 when it already holds it)",
)
async def put_member(
    write: AdminWriteDep,
    admin: PolicyAdministrationDep,
    role: RolePath,
    subject: SubjectPath,
    domain: DomainQuery = None,
    _key: IdempotencyKeyHeader = None,
) -> Response:
    return await write.run(lambda: admin.add_member(role, subject, domain, **_by(write)), _created)


@router.delete(
    "/roles/{role}/members/{subject}",
    response_model=RemoveOut,
    responses=error_responses(*_AUTH, RoleNotFound, NotFound, Conflict, RequestInvalid),
    summary="Take the role away from `subject`",
)
async def delete_member(
    write: AdminWriteDep,
    admin: PolicyAdministrationDep,
    role: RolePath,
    subject: SubjectPath,
    domain: DomainQuery = None,
    _key: IdempotencyKeyHeader = None,
) -> Response:
    return await write.run(
        lambda: admin.remove_member(role, subject, domain, **_by(write)), _removed
    )


@router.post(
    "/policies/reload",
    response_model=ReloadOut,
    responses=error_responses(*_AUTH, InvalidPolicy),
    summary="Reload from files and database now: lint, swap atomically, audit",
)
async def reload_policies(principal: PolicyAdmin, reloader: ReloaderDep) -> dict[str, Any]:
    outcome = await reloader.reload(
        trigger="reload", actor=principal.subject, source="api", request_id=request_id_var.get()
    )
    return {
        "policy_revision": outcome.revision,
        "previous_revision": outcome.previous_revision,
        "warnings": [f.as_dict() for f in outcome.warnings],
    }
