"""What a decision is asked about, in the shape Casbin's matchers can read.

An `Entity` is a `str` (its id), so RBAC matchers such as ``g(r.sub, p.sub)`` or
``keyMatch(r.obj, p.obj)`` work on it unchanged. It also exposes ``.type``, ``.id`` and every
property as an attribute (``r.obj.owner``, ``r.sub.department``), so ABAC matchers run on the
same request. Properties shadow `str` methods of the same name (a property called ``title``
or ``count`` is what an ABAC author means, not the string method).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

DEFAULT_TYPE = "user"
"""The type whose ids are policy keys as written (``alice``); other types are scoped."""


def policy_key(type: str | None, id: str) -> str:
    """The name rules and role links use for entity (`type`, `id`).

    Ids are scoped by type, so ``{"type": "group", "id": "alice"}`` is ``group:alice`` and
    never user alice. Rules are read this way:
    - no type (a plain string request): the id is the key as written (``alice`` is a user,
      ``client:web`` a client, ``api:schemas`` a resource, by the naming convention);
    - an id already starting with ``<type>:`` is the key (``api`` / ``api:schemas``);
    - a `user` id without ``:`` is the key (``alice``);
    - anything else is ``<type>:<id>`` (``group:alice``, ``todo:42``, ``user:a:b``).
    A typed id can therefore never take another type's key.
    """
    if type is None:
        return id
    prefix = type + ":"
    if id.startswith(prefix):
        return id
    if type == DEFAULT_TYPE and ":" not in id:
        return id
    return prefix + id


def key_type(key: str) -> str:
    """The type a policy key names (``group:alice`` -> group, ``alice`` -> user)."""
    head, sep, _ = key.partition(":")
    return head if sep else DEFAULT_TYPE


class MissingAttribute(Exception):
    """A matcher read a property the request did not carry.

    Deliberately not an AttributeError: the expression evaluator would swallow that and
    report a vaguer error without saying whose property was missing.
    """

    def __init__(self, owner: str, name: str) -> None:
        super().__init__(f"{owner} has no property {name!r}")
        self.owner = owner
        self.name = name


def _wrap(value: Any, owner: str) -> Any:
    if isinstance(value, Mapping):
        return AttrView(value, owner)
    if isinstance(value, list):
        return tuple(_wrap(v, owner) for v in value)
    return value


class AttrView(Mapping[str, Any]):
    """Read-only attribute access over a nested JSON object (``r.obj.owner.team``)."""

    __slots__ = ("_data", "_owner")

    def __init__(self, data: Mapping[str, Any], owner: str) -> None:
        self._data = data
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return _wrap(self._data[name], f"{self._owner}.{name}")
        except KeyError:
            raise MissingAttribute(self._owner, name) from None

    def __getitem__(self, key: str) -> Any:
        return _wrap(self._data[key], f"{self._owner}.{key}")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class Entity(str):
    """A subject, resource or action: compares and hashes as its id."""

    # Class-level defaults: a plain entity (the common case) sets one attribute, not three.
    type: str | None = None
    properties: Mapping[str, Any] = MappingProxyType({})
    _kind: str

    def __new__(
        cls,
        id: str,
        type: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        kind: str = "entity",
    ) -> Entity:
        obj = super().__new__(cls, id)
        if type is not None:
            obj.type = type
        if properties:
            obj.properties = properties
        obj._kind = kind
        return obj

    @classmethod
    def typed(
        cls,
        type: str | None,
        id: str,
        properties: Mapping[str, Any] | None = None,
        *,
        kind: str = "entity",
    ) -> Entity:
        """An AuthZEN-style entity: compared by its type-scoped key (`policy_key`)."""
        return cls(policy_key(type, id), type, properties, kind=kind)

    @property
    def id(self) -> str:
        return str.__str__(self)

    def __getattribute__(self, name: str) -> Any:
        if name[0] != "_" and name not in _OWN_ATTRS:
            props = object.__getattribute__(self, "properties")
            if name in props:
                return _wrap(props[name], f"{object.__getattribute__(self, '_kind')}.{name}")
        return super().__getattribute__(name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise MissingAttribute(object.__getattribute__(self, "_kind"), name)

    def __reduce__(self) -> Any:
        return (_rebuild_entity, (self.id, self.type, dict(self.properties), self._kind))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.type is not None:
            out["type"] = self.type
        if self.properties:
            out["properties"] = dict(self.properties)
        return out


_OWN_ATTRS = frozenset({"type", "properties", "id", "describe", "typed"})


def _rebuild_entity(id: str, type: str | None, properties: dict[str, Any], kind: str) -> Entity:
    return Entity(id, type, properties, kind=kind)


def canonical(value: Any, out: list[str]) -> None:
    """A type-tagged, length-prefixed encoding of a JSON value that never fails and never
    merges two values: `null`, `true`, `1`, `1.0` and NaN all differ (JSON encoders write
    NaN as `null` and some read `1.0` as `1`), object keys are sorted, strings cannot run
    into each other. A cache key made from it cannot hand one request another's answer."""
    if value is None:
        out.append("n;")
    elif value is True:
        out.append("t;")
    elif value is False:
        out.append("f;")
    elif isinstance(value, int):
        out.append(f"i{value};")
    elif isinstance(value, float):
        out.append(f"d{value!r};")  # repr: round-trips, and 'nan' / 'inf' stay distinct
    elif isinstance(value, str):
        out.append(f"s{len(value)}:{value}")
    elif isinstance(value, Mapping):
        out.append(f"o{len(value)}{{")
        for key in sorted(value, key=str):
            canonical(str(key), out)
            canonical(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append(f"a{len(value)}[")
        for item in value:
            canonical(item, out)
        out.append("]")
    else:
        out.append(f"x{type(value).__name__}:{value!r};")


def request_value(value: Any, owner: str) -> Any:
    """A value given for a request token (positional `values` or `context`), as matchers
    read it: text is an `Entity` (so ``g(r.sub, ...)`` and ``r.sub.prop`` work), an object
    gives attribute access, numbers and booleans stay as they are."""
    if isinstance(value, Entity):
        return value
    if isinstance(value, str):
        return Entity(value, kind=owner)
    return _wrap(value, owner)


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """One question: may `subject` perform `action` on `resource` (in `domain`)?

    Models whose request definition is not (sub, obj, act[, dom]) read their other tokens
    from `context` by name, or take every value by position from `values`. `definition`
    selects a second request/policy/matcher set (``"2"`` or ``"r2"`` for r2/p2/m2).
    """

    subject: Entity
    resource: Entity
    action: Entity
    domain: str | None = None
    values: tuple[Any, ...] | None = None
    context: Mapping[str, Any] | None = None
    definition: str | None = None

    @classmethod
    def of(
        cls,
        subject: str | Entity,
        resource: str | Entity,
        action: str | Entity,
        domain: str | None = None,
    ) -> DecisionRequest:
        """Shorthand for plain-string requests (tests, CLI)."""
        return cls(
            subject=subject if isinstance(subject, Entity) else Entity(subject, kind="subject"),
            resource=resource
            if isinstance(resource, Entity)
            else Entity(resource, kind="resource"),
            action=action if isinstance(action, Entity) else Entity(action, kind="action"),
            domain=domain,
        )

    @classmethod
    def positional(cls, values: Sequence[Any], *, definition: str | None = None) -> DecisionRequest:
        """A request given as Casbin's `enforce(*values)` takes it, in definition order."""
        texts = [v for v in values if isinstance(v, str)]
        return cls(
            subject=Entity(texts[0] if texts else "", kind="subject"),
            resource=Entity("", kind="resource"),
            action=Entity("", kind="action"),
            values=tuple(values),
            definition=definition,
        )

    @property
    def is_plain(self) -> bool:
        """True when nothing but ids is given (no types, properties or other tokens)."""
        return not (
            self.subject.properties
            or self.resource.properties
            or self.action.properties
            or self.subject.type
            or self.resource.type
            or self.values is not None
            or self.context
            or self.definition
        )

    def fingerprint(self) -> str:
        """A stable digest of everything that can influence the decision."""
        if self.is_plain:
            raw = "\x1f".join(
                (self.subject.id, self.resource.id, self.action.id, self.domain or "")
            ).encode()
        else:
            parts: list[str] = []
            for value in (
                self.subject.describe(),
                self.resource.describe(),
                self.action.describe(),
                self.domain,
                _plain(self.values),
                _plain(self.context),
                self.definition,
            ):
                canonical(value, parts)
            raw = "".join(parts).encode("utf-8", "surrogatepass")
        return hashlib.sha256(raw).hexdigest()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "subject": self.subject.describe(),
            "resource": self.resource.describe(),
            "action": self.action.describe(),
        }
        if self.domain is not None:
            out["domain"] = self.domain
        if self.values is not None:
            out["values"] = _plain(self.values)
        if self.context:
            out["context"] = _plain(self.context)
        if self.definition:
            out["definition"] = self.definition
        return out


def _plain(value: Any) -> Any:
    """JSON-ready form of request values (entities by their description)."""
    if isinstance(value, Entity):
        return value.describe() if value.type or value.properties else value.id
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
