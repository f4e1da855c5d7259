"""Effective permissions of users, through their roles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, model_validator

from app.api.deps import EngineDep
from app.api.openapi import error_responses
from app.api.schemas.common import Identifier
from app.api.schemas.decisions import MAX_BATCH, batch_limit
from app.errors import BatchTooLarge, RequestInvalid
from app.policy.snapshot import PolicySnapshot

router = APIRouter(prefix="/api/v1/users", tags=["permissions"])


class PermissionsBatchRequest(BaseModel):
    user_ids: list[Identifier] = Field(min_length=1, examples=[["alice", "bob"]])
    domain: Identifier | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_too_many(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("user_ids"), list):
            batch_limit(MAX_BATCH)({"checks": data["user_ids"]})
        return data


def describe_user(snapshot: PolicySnapshot, user_id: str, domain: str | None) -> dict[str, Any]:
    perms = snapshot.permissions_for(user_id, domain)
    return {
        "user_id": user_id,
        "roles": snapshot.implicit_roles(user_id, domain),
        "permissions": [p.as_dict() for p in perms],
        "scopes": snapshot.allowed_scopes(user_id, domain),
    }


@router.get(
    "/{user_id}/permissions",
    responses=error_responses(RequestInvalid),
    summary="A user's roles (implicit) and the rules that apply to them",
)
async def user_permissions(
    engine: EngineDep,
    user_id: Annotated[Identifier, Path()],
    domain: Annotated[Identifier | None, Query()] = None,
) -> dict[str, Any]:
    snapshot = engine.snapshot
    return {**describe_user(snapshot, user_id, domain), "policy_revision": snapshot.revision}


@router.post(
    "/permissions/batch",
    responses=error_responses(RequestInvalid, BatchTooLarge),
    summary="Permissions of up to 1000 users in one call",
)
async def users_permissions_batch(
    body: PermissionsBatchRequest, engine: EngineDep
) -> dict[str, Any]:
    snapshot = engine.snapshot
    return {
        "users": [describe_user(snapshot, uid, body.domain) for uid in body.user_ids],
        "policy_revision": snapshot.revision,
    }
