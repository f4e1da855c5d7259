"""User administration over HTTP, authenticated like the policy admin API.

Every write goes through `Writes` (runs to completion; `Idempotency-Key` replays) and is
audited with the caller as actor. The work happens in `app.administration.users`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Security
from pydantic import BaseModel, Field
from starlette.responses import Response

from app.adapters.http.writes import AdminWrite
from app.api.admin import AdminWriteDep, IdempotencyKeyHeader, admin_api_key_scheme
from app.api.deps import UsersAdminDep
from app.api.openapi import error_responses
from app.api.principals import PolicyAdmin
from app.api.routing import StrictJSONRoute
from app.api.schemas.common import Identifier
from app.audit.note import AuditNote
from app.errors import (
    AuthenticationFailed,
    Conflict,
    IdempotencyMismatch,
    NotFound,
    Overloaded,
    PermissionDenied,
    RequestInvalid,
    RoleNotFound,
)
from app.observability.logging import request_id_var

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/api/v1/admin/users",
    tags=["user administration"],
    dependencies=[Security(admin_api_key_scheme)],
)

AttributeValue = str | int | float | bool | None
_AUTH = (AuthenticationFailed, PermissionDenied, RequestInvalid, IdempotencyMismatch)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=150, examples=["dora"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery"])
    roles: list[Identifier] = Field(default_factory=list, max_length=100, examples=[["viewer"]])
    is_admin: bool = False
    attributes: dict[Identifier, AttributeValue] = Field(default_factory=dict, max_length=100)


class UserPatch(BaseModel):
    roles: list[Identifier] | None = Field(
        default=None, max_length=100, description="Replaces the user's direct roles"
    )
    attributes: dict[Identifier, AttributeValue] | None = Field(
        default=None, max_length=100, description="Replaces the user's attributes"
    )
    is_admin: bool | None = None


class UserOut(BaseModel):
    username: str
    id: str
    is_admin: bool
    disabled: bool
    roles: list[str]
    attributes: dict[str, Any]
    policy_revision: int | None = None
    live: bool | None = None


Username = Annotated[str, Path(max_length=150)]


def _note(write: AdminWrite) -> AuditNote:
    return AuditNote(actor=write.principal.subject, source="api", request_id=request_id_var.get())


@router.post(
    "",
    status_code=201,
    response_model=UserOut,
    responses=error_responses(*_AUTH, Conflict, RoleNotFound, Overloaded),
    summary="Create a user (password policy, known roles; one policy revision when roles)",
)
async def create_user(
    body: UserIn,
    write: AdminWriteDep,
    users: UsersAdminDep,
    _key: IdempotencyKeyHeader = None,
) -> Response:
    return await write.json(
        lambda: users.create(
            username=body.username,
            password=body.password,
            roles=body.roles,
            is_admin=body.is_admin,
            attributes=dict(body.attributes),
            audit=_note(write),
        ),
        201,
    )


@router.get(
    "/{username}",
    response_model=UserOut,
    responses=error_responses(AuthenticationFailed, PermissionDenied, NotFound),
    summary="A user: flags, direct roles, attributes",
)
async def get_user(username: Username, _: PolicyAdmin, users: UsersAdminDep) -> dict[str, Any]:
    return await users.get(username)


@router.patch(
    "/{username}",
    response_model=UserOut,
    responses=error_responses(*_AUTH, NotFound, RoleNotFound),
    summary="Replace a user's roles and/or attributes (role changes cut off stale tokens)",
)
async def update_user(
    username: Username,
    body: UserPatch,
    write: AdminWriteDep,
    users: UsersAdminDep,
    _key: IdempotencyKeyHeader = None,
) -> Response:
    attributes = dict(body.attributes) if body.attributes is not None else None
    return await write.json(
        lambda: users.update(
            username,
            roles=body.roles,
            attributes=attributes,
            is_admin=body.is_admin,
            audit=_note(write),
        ),
    )


@router.post(
    "/{username}/disable",
    response_model=UserOut,
    responses=error_responses(*_AUTH, NotFound),
    summary="Disable a user: no more logins, every token it holds stops validating",
)
async def disable(
    username: Username,
    write: AdminWriteDep,
    users: UsersAdminDep,
    _key: IdempotencyKeyHeader = None,
) -> Response:
    return await write.json(lambda: users.disable(username, audit=_note(write)))


@router.post(
    "/{username}/unlock",
    response_model=UserOut,
    responses=error_responses(*_AUTH, NotFound),
    summary="Lift a user's login lock (failed-login limit)",
)
async def unlock(
    username: Username,
    write: AdminWriteDep,
    users: UsersAdminDep,
    _key: IdempotencyKeyHeader = None,
) -> Response:
    return await write.json(lambda: users.unlock(username, audit=_note(write)))


@router.delete(
    "/{username}",
    responses=error_responses(*_AUTH, NotFound),
    summary="Delete a user, its role assignments and sessions (its tokens stop validating)",
)
async def delete_user(
    username: Username,
    write: AdminWriteDep,
    users: UsersAdminDep,
    _key: IdempotencyKeyHeader = None,
) -> Response:
    return await write.json(lambda: users.delete(username, audit=_note(write)))
