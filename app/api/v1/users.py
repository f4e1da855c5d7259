"""Effective permissions of users, through their roles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, model_validator

from app.api.deps import PermissionsDep
from app.api.openapi import error_responses
from app.api.principals import QueryCaller
from app.api.routing import StrictJSONRoute
from app.api.schemas.common import Identifier, refuse_large_batch
from app.errors import (
    AuthenticationFailed,
    BatchTooLarge,
    PermissionDenied,
    RateLimited,
    RequestInvalid,
)

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/users", tags=["permissions"])


class PermissionsBatchRequest(BaseModel):
    user_ids: list[Identifier] = Field(min_length=1, examples=[["alice", "bob"]])
    domain: Identifier | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_too_many(cls, data: Any) -> Any:
        return refuse_large_batch(data, "user_ids")


@router.get(
    "/{user_id}/permissions",
    responses=error_responses(AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid),
    summary="A user's roles (implicit) and the rules that apply to them",
)
async def user_permissions(
    permissions: PermissionsDep,
    caller: QueryCaller,
    user_id: Annotated[Identifier, Path()],
    domain: Annotated[Identifier | None, Query()] = None,
) -> dict[str, Any]:
    found, revision = await permissions.lookup([user_id], domain=domain)
    permission_set, cached = found[0]
    return {**permission_set, "cached": cached, "policy_revision": revision}


@router.post(
    "/permissions/batch",
    responses=error_responses(
        AuthenticationFailed, PermissionDenied, RateLimited, RequestInvalid, BatchTooLarge
    ),
    summary="Permissions of up to 1000 users in one call",
)
async def users_permissions_batch(
    body: PermissionsBatchRequest, permissions: PermissionsDep, caller: QueryCaller
) -> dict[str, Any]:
    found, revision = await permissions.lookup(body.user_ids, domain=body.domain)
    return {
        "users": [{**value, "cached": cached} for value, cached in found],
        "policy_revision": revision,
    }
