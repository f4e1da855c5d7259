"""Search (AuthZEN 1.0 §8): which subjects, resources or actions a decision allows.

Every answer is a set of candidates each confirmed by a real decision against one snapshot,
so search agrees with evaluation by construction, on any model:
- subjects of a type: the entity store's entities of that type, plus (models whose `p` has
  sub/obj/act) every non-role subject the rules and role links name whose key is of that type;
- resources of a type: the entity store's entities of that type, plus (sub/obj/act models)
  the concrete resources (no patterns) the subject's rules name, of that type;
- actions: every action a rule names (a `*` is not an action) and every action the matcher
  compares `r.act` with.

Results are sorted by (type, id) (actions by name) and paged by offset behind an opaque token
that also pins the snapshot content, so a policy or entity change between pages is answered
with a clear error rather than a silently shifted page.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from app.errors import RequestInvalid
from app.policy.request import DecisionRequest, Entity, key_type
from app.policy.roles import MAX_HIERARCHY_DEPTH
from app.policy.snapshot import PolicySnapshot

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    results: list[dict[str, str]]
    next_token: str
    total: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "page": {
                "next_token": self.next_token,
                "count": len(self.results),
                "total": self.total,
            },
        }


def _is_pattern(value: str) -> bool:
    return "*" in value or "{" in value or "(" in value


def _page(
    snapshot: PolicySnapshot,
    items: list[dict[str, str]],
    *,
    token: str | None,
    limit: int | None,
) -> Page:
    size = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= size <= MAX_LIMIT:
        raise RequestInvalid(
            f"page.limit must be 1-{MAX_LIMIT}",
            details={"fields": [{"field": "page.limit", "message": f"1-{MAX_LIMIT}"}]},
        )
    offset = _offset(snapshot, token)
    chunk = items[offset : offset + size]
    end = offset + len(chunk)
    next_token = ""
    if end < len(items):
        raw = orjson.dumps({"o": end, "c": snapshot.content_digest[:16]})
        next_token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return Page(chunk, next_token, len(items))


def _offset(snapshot: PolicySnapshot, token: str | None) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        offset, content = int(data["o"]), str(data["c"])
    except Exception:
        raise RequestInvalid(
            "page.token is not one this service issued",
            details={"fields": [{"field": "page.token", "message": "invalid"}]},
        ) from None
    if content != snapshot.content_digest[:16]:
        raise RequestInvalid(
            "the policy or the entity store changed since this page token was issued: "
            "start again without a token",
            details={"fields": [{"field": "page.token", "message": "stale"}]},
        )
    return max(0, offset)


def _allowed(snapshot: PolicySnapshot) -> Callable[[DecisionRequest], bool]:
    def check(request: DecisionRequest) -> bool:
        return snapshot.decide(request).allowed

    return check


def _stored(snapshot: PolicySnapshot, type: str | None) -> dict[str, tuple[str, str]]:
    entities = snapshot.entities
    chosen = entities.of_type(type) if type is not None else entities.by_key.values()
    return {e.key: (e.type, e.id) for e in chosen}


def subject_candidates(
    snapshot: PolicySnapshot, subject_type: str | None
) -> dict[str, tuple[str, str]]:
    """policy key -> (type, id), for every subject of `subject_type` (None: any) search
    considers."""
    out = _stored(snapshot, subject_type)
    if snapshot.model.is_rbac:
        users, _roles = snapshot.subject_sets
        for key in users:
            kind = key_type(key)
            if key not in out and subject_type in (None, kind):
                out[key] = (kind, key)
    return out


def _rule_subjects(snapshot: PolicySnapshot, resource: str, action: str) -> set[str]:
    """Subjects of the allow rules whose resource and action can match (indexed models)."""
    plan = snapshot.indexed.plan if snapshot.indexed is not None else None
    if plan is None:
        return set()
    by_object, patterns = snapshot.rules_by_object
    rules = snapshot.generic_rules
    out: set[str] = set()
    positions = list(by_object.get(resource, ()))
    if plan.obj_pattern:
        positions += [i for prefix, i in patterns if resource.startswith(prefix)]
    for i in positions:
        values = rules[i]
        if plan.eft is not None and values[plan.eft] != "allow":
            continue
        act = values[plan.act]
        if act == action or (plan.act_wildcard and act == "*"):
            out.add(values[plan.sub])
    return out


def indexed_subject_candidates(
    snapshot: PolicySnapshot, subject_type: str | None, resource: str, action: str
) -> dict[str, tuple[str, str]]:
    """The subjects an indexed model can allow: everyone whose roles reach the subject of a
    matching allow rule (walked backwards over the role links, ~ the answer's size)."""
    _users, roles = snapshot.subject_sets
    reached: set[str] = set()
    frontier = _rule_subjects(snapshot, resource, action)
    members = snapshot.role_members
    for _depth in range(MAX_HIERARCHY_DEPTH + 1):
        nxt = {m for name in frontier for m in members.get(name, ()) if m not in reached}
        reached |= frontier
        if not nxt:
            break
        frontier = nxt
    out = {
        e.key: (e.type, e.id)
        for e in (snapshot.entities.by_key.get(k) for k in reached)
        if e is not None and subject_type in (None, e.type)
    }
    for key in reached:
        kind = key_type(key)
        if key not in out and key not in roles and subject_type in (None, kind):
            out[key] = (kind, key)
    return out


def search_subjects(
    snapshot: PolicySnapshot,
    *,
    subject_type: str | None,
    resource: Entity,
    action: Entity,
    domain: str | None = None,
    token: str | None = None,
    limit: int | None = None,
) -> Page:
    allowed = _allowed(snapshot)
    found = []
    if snapshot.indexed is not None:
        candidates = indexed_subject_candidates(snapshot, subject_type, str(resource), str(action))
    else:
        candidates = subject_candidates(snapshot, subject_type)
    for key, (stype, sid) in candidates.items():
        subject = Entity(key, stype, kind="subject")
        if allowed(DecisionRequest(subject, resource, action, domain)):
            found.append({"type": stype, "id": sid})
    found.sort(key=lambda r: (r["type"], r["id"]))
    return _page(snapshot, found, token=token, limit=limit)


def resource_candidates(
    snapshot: PolicySnapshot, subject: Entity, resource_type: str | None, domain: str | None
) -> dict[str, tuple[str, str]]:
    out = _stored(snapshot, resource_type)
    if snapshot.model.is_rbac:
        for perm in snapshot.permissions_for(str(subject), domain):
            key = perm.resource
            kind = key_type(key)
            if key not in out and not _is_pattern(key) and resource_type in (None, kind):
                out[key] = (kind, key)
    return out


def search_resources(
    snapshot: PolicySnapshot,
    *,
    subject: Entity,
    action: Entity,
    resource_type: str | None,
    domain: str | None = None,
    token: str | None = None,
    limit: int | None = None,
) -> Page:
    allowed = _allowed(snapshot)
    found = []
    for key, (rtype, rid) in resource_candidates(snapshot, subject, resource_type, domain).items():
        resource = Entity(key, rtype, kind="resource")
        if allowed(DecisionRequest(subject, resource, action, domain)):
            found.append({"type": rtype, "id": rid})
    found.sort(key=lambda r: (r["type"], r["id"]))
    return _page(snapshot, found, token=token, limit=limit)


def action_candidates(snapshot: PolicySnapshot) -> list[str]:
    return [name for name in snapshot.action_names if not _is_pattern(name)]


def search_actions(
    snapshot: PolicySnapshot,
    *,
    subject: Entity,
    resource: Entity,
    domain: str | None = None,
    token: str | None = None,
    limit: int | None = None,
) -> Page:
    allowed = _allowed(snapshot)
    found = [
        {"name": name}
        for name in action_candidates(snapshot)
        if allowed(DecisionRequest(subject, resource, Entity(name, kind="action"), domain))
    ]
    return _page(snapshot, found, token=token, limit=limit)
