"""The entity store's content as the engine reads it (a policy information point).

An entity is `{type, id, properties, parents}`. It is stored in the database, versioned by
its own revision (`entity_revision`, apart from the policy revision) and held, frozen, by
every policy snapshot:

- **properties**: when a request names an entity without (some of) its properties, the
  engine reads them from here. A property the request gives wins over the stored one of the
  same name (top-level names; a request property replaces the stored value whole).
- **parents**: each parent is a role link from the entity to the parent, added to the
  model's `g` role graph (models with a two-field `g`): group membership
  (`user alice -> group admins`), roles (`identity X -> role admin`) and resource hierarchy
  (`document d1 -> folder f1`) all work through `g(r.sub, p.sub)` / the role graph.

Entities are named in rules by their policy key (`app.policy.request.policy_key`):
`alice` for user alice, `group:admins`, `role:admin`, `record:101`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import yaml

from app.errors import RequestInvalid
from app.policy.request import Entity, policy_key

MAX_ENTITY_BYTES = 64 * 1024  # one entity's properties and parents, as JSON
MAX_PARENTS = 100


@dataclass(frozen=True, slots=True)
class StoredEntity:
    type: str
    id: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    parents: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return policy_key(self.type, self.id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "id": self.id,
            "properties": dict(self.properties),
            "parents": [{"type": t, "id": i} for t, i in self.parents],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoredEntity:
        """Validate one entity as the API, import files and the database give it."""
        problems: list[dict[str, str]] = []

        def ident(value: Any, where: str) -> str:
            if not isinstance(value, str) or not 1 <= len(value) <= 255:
                problems.append({"field": where, "message": "a string of 1-255 characters"})
                return ""
            if not value.isprintable():
                problems.append({"field": where, "message": "control characters not allowed"})
            return value

        etype = ident(data.get("type"), "type")
        eid = ident(data.get("id"), "id")
        props = data.get("properties")
        props = {} if props is None else props
        if not isinstance(props, dict):
            problems.append({"field": "properties", "message": "must be an object"})
            props = {}
        raw_parents = data.get("parents")
        raw_parents = [] if raw_parents is None else raw_parents
        parents: list[tuple[str, str]] = []
        if not isinstance(raw_parents, list) or len(raw_parents) > MAX_PARENTS:
            problems.append({"field": "parents", "message": f"a list of at most {MAX_PARENTS}"})
            raw_parents = []
        for i, parent in enumerate(raw_parents):
            if not isinstance(parent, dict):
                problems.append({"field": f"parents.{i}", "message": "must be {type, id}"})
                continue
            parents.append(
                (
                    ident(parent.get("type"), f"parents.{i}.type"),
                    ident(parent.get("id"), f"parents.{i}.id"),
                )
            )
        unknown = set(data) - {"type", "id", "properties", "parents"}
        if unknown:
            problems.append({"field": sorted(unknown)[0], "message": "unknown field"})
        if not problems and len(orjson.dumps([props, parents])) > MAX_ENTITY_BYTES:
            problems.append({"field": "properties", "message": f"over {MAX_ENTITY_BYTES} bytes"})
        if problems:
            raise RequestInvalid(
                f"entity {etype or '?'}/{eid or '?'}: "
                + ", ".join(f"{p['field']}: {p['message']}" for p in problems),
                details={"fields": problems},
            )
        return cls(etype, eid, MappingProxyType(dict(props)), tuple(parents))


@dataclass(frozen=True)
class EntitySet:
    """Every stored entity at one entity revision, indexed by policy key."""

    revision: int = 0
    by_key: Mapping[str, StoredEntity] = field(default_factory=dict)
    digest: str = ""

    @classmethod
    def of(cls, entities: Iterable[StoredEntity], *, revision: int) -> EntitySet:
        index: dict[str, StoredEntity] = {}
        for entity in entities:
            index[entity.key] = entity
        ordered = sorted(index.values(), key=lambda e: (e.type, e.id))
        text = orjson.dumps([e.as_dict() for e in ordered], option=orjson.OPT_SORT_KEYS)
        return cls(revision, MappingProxyType(index), hashlib.sha256(text).hexdigest())

    def __len__(self) -> int:
        return len(self.by_key)

    def get(self, type: str | None, id: str) -> StoredEntity | None:
        return self.by_key.get(policy_key(type, id))

    def of_type(self, type: str) -> list[StoredEntity]:
        return sorted((e for e in self.by_key.values() if e.type == type), key=lambda e: e.id)

    def role_links(self) -> list[tuple[str, str]]:
        """(entity key, parent key) for every parent, in a stable order."""
        out: list[tuple[str, str]] = []
        for key in sorted(self.by_key):
            entity = self.by_key[key]
            out.extend((key, policy_key(t, i)) for t, i in entity.parents)
        return out

    def enrich(self, entity: Entity) -> Entity:
        """`entity` with the stored properties it does not give itself (request wins)."""
        stored = self.by_key.get(str(entity))
        if stored is None or not stored.properties:
            return entity
        given = entity.properties
        if given and all(name in given for name in stored.properties):
            return entity
        merged = {**stored.properties, **given}
        kind = object.__getattribute__(entity, "_kind")
        return Entity(str(entity), entity.type or stored.type, merged, kind=kind)


EMPTY = EntitySet()


ENTITY_FILE = "entities.yaml"


def parse_entity_document(data: Any, *, source: str) -> list[StoredEntity]:
    """`{"entities": [...]}` or a bare list, as `entities export` writes and import reads."""
    items = data.get("entities") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise RequestInvalid(f"{source}: expected a list of entities or {{entities: [...]}}")
    out: list[StoredEntity] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise RequestInvalid(f"{source}: entity {i + 1} is not an object")
        try:
            out.append(StoredEntity.from_dict(item))
        except RequestInvalid as exc:
            raise RequestInvalid(
                f"{source}: entity {i + 1}: {exc.message}", details=exc.details
            ) from None
    return out


def read_entity_file(path: Path) -> list[StoredEntity]:
    """Entities from a JSON or YAML file (`.json`, else YAML, which JSON also is)."""
    text = path.read_text(encoding="utf-8")
    data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return parse_entity_document(data, source=path.name)


def policy_entities(policy_dir: Path) -> EntitySet:
    """The entity store seed a policy folder ships (`entities.yaml`), for `policy test`."""
    path = policy_dir / ENTITY_FILE
    if not path.is_file():
        return EMPTY
    return EntitySet.of(read_entity_file(path), revision=0)
