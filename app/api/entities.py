"""Entity store administration: list, read, put and remove entities, import in bulk.

Authenticated like policy administration (`PolicyAdmin`: an admin, the
`authz:policies:write` scope, or the admin API key). A write commits with a new entity
revision, is live on this instance when the answer is sent, and reaches the other instances
through the policy change channel (and the database poll), without a policy reload.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query, Security

from app.api.admin import admin_api_key_scheme
from app.api.deps import EngineDep, EntitiesDep
from app.api.openapi import error_responses
from app.api.principals import PolicyAdmin
from app.api.routing import StrictJSONRoute
from app.api.schemas.common import Identifier
from app.errors import (
    AuthenticationFailed,
    BatchTooLarge,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RequestInvalid,
)
from app.observability.logging import request_id_var
from app.policy.engine import PolicyEngine
from app.policy.entities import StoredEntity
from app.security.principal import Principal
from app.store.entities import Actor

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/api/v1/entities",
    tags=["entity store"],
    dependencies=[Security(admin_api_key_scheme)],
)

_AUTH = (AuthenticationFailed, PermissionDenied)
TypePath = Annotated[Identifier, Path(examples=["user"])]
IdPath = Annotated[Identifier, Path(examples=["alice"])]
MAX_IMPORT = 10_000

_EXAMPLE = {
    "type": "user",
    "id": "alice",
    "properties": {"department": "eng", "email": "alice@example.com"},
    "parents": [{"type": "group", "id": "admins"}],
}


def _actor(principal: Principal) -> Actor:
    return Actor(principal.subject, "api", request_id_var.get())


def _cursor(token: str | None) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return str(data[0]), str(data[1])
    except Exception:
        raise RequestInvalid(
            "page_token is not one this service issued",
            details={"fields": [{"field": "page_token", "message": "invalid"}]},
        ) from None


def _token(entity: StoredEntity) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([entity.type, entity.id])).decode()


async def _written(engine: PolicyEngine, revision: int) -> dict[str, Any]:
    await engine.refresh_entities(trigger="entities")
    return {"entity_revision": revision, "served_entity_revision": engine.entity_revision}


def _missing(type: str, id: str) -> NotFound:
    return NotFound(f"no entity {type}/{id}", details={"type": type, "id": id})


@router.get(
    "",
    responses=error_responses(*_AUTH, RequestInvalid),
    summary="Stored entities, ordered by type and id, paged",
    response_description="One page; `next_page_token` is absent on the last page",
)
async def list_entities(
    _: PolicyAdmin,
    store: EntitiesDep,
    engine: EngineDep,
    type: Annotated[Identifier | None, Query(examples=["user"])] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: Annotated[str | None, Query(max_length=1024)] = None,
) -> dict[str, Any]:
    items, total = await store.page(type=type, after=_cursor(page_token), limit=limit)
    out: dict[str, Any] = {
        "entities": [e.as_dict() for e in items],
        "total": total,
        "entity_revision": engine.entity_revision,
    }
    if len(items) == limit:
        out["next_page_token"] = _token(items[-1])
    return out


@router.get(
    "/{type}/{id}",
    responses=error_responses(*_AUTH, NotFound, RequestInvalid),
    summary="One stored entity",
)
async def get_entity(
    _: PolicyAdmin,
    store: EntitiesDep,
    type: TypePath,
    id: IdPath,
) -> dict[str, Any]:
    entity = await store.get(type, id)
    if entity is None:
        raise _missing(type, id)
    return entity.as_dict()


@router.put(
    "/{type}/{id}",
    responses=error_responses(*_AUTH, RequestInvalid, PayloadTooLarge),
    summary="Create or replace an entity's properties and parents (live at once)",
)
async def put_entity(
    principal: PolicyAdmin,
    store: EntitiesDep,
    engine: EngineDep,
    type: TypePath,
    id: IdPath,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "properties": _EXAMPLE["properties"],
                    "parents": _EXAMPLE["parents"],
                }
            ]
        ),
    ],
) -> dict[str, Any]:
    entity = StoredEntity.from_dict({**body, "type": type, "id": id})
    revision = await store.put_many([entity], actor=_actor(principal))
    return {"entity": entity.as_dict(), **await _written(engine, revision)}


@router.delete(
    "/{type}/{id}",
    responses=error_responses(*_AUTH, NotFound, RequestInvalid),
    summary="Remove an entity (live at once)",
)
async def delete_entity(
    principal: PolicyAdmin,
    store: EntitiesDep,
    engine: EngineDep,
    type: Annotated[Identifier, Path()],
    id: Annotated[Identifier, Path()],
) -> dict[str, Any]:
    revision = await store.delete(type, id, actor=_actor(principal))
    if revision is None:
        raise _missing(type, id)
    return await _written(engine, revision)


@router.post(
    "/import",
    responses=error_responses(*_AUTH, RequestInvalid, BatchTooLarge, PayloadTooLarge),
    summary="Create or replace many entities in one transaction (`replace`: drop all others)",
)
async def import_entities(
    principal: PolicyAdmin,
    store: EntitiesDep,
    engine: EngineDep,
    body: Annotated[
        dict[str, Any],
        Body(examples=[{"entities": [_EXAMPLE], "replace": False}]),
    ],
) -> dict[str, Any]:
    raw = body.get("entities")
    if not isinstance(raw, list):
        raise RequestInvalid(
            "`entities` must be a list",
            details={"fields": [{"field": "entities", "message": "a list of entities"}]},
        )
    if len(raw) > MAX_IMPORT:
        raise BatchTooLarge(
            f"at most {MAX_IMPORT} entities per import, got {len(raw)}",
            details={"limit": MAX_IMPORT, "count": len(raw)},
        )
    entities = [_parse(item, i) for i, item in enumerate(raw)]
    replace = body.get("replace", False) is True
    revision = await store.put_many(entities, actor=_actor(principal), replace=replace)
    return {"imported": len(entities), "replace": replace, **await _written(engine, revision)}


def _parse(item: Any, index: int) -> StoredEntity:
    if not isinstance(item, dict):
        raise RequestInvalid(
            f"entities.{index} must be an object",
            details={"fields": [{"field": f"entities.{index}", "message": "an object"}]},
        )
    try:
        return StoredEntity.from_dict(item)
    except RequestInvalid as exc:
        raise RequestInvalid(f"entities.{index}: {exc.message}", details=exc.details) from None
