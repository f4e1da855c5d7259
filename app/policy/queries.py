"""Reverse questions over one snapshot: who may do X on Y, and what may S do."""

from __future__ import annotations

from dataclasses import dataclass

from app.policy.request import DecisionRequest
from app.policy.snapshot import PolicySnapshot


@dataclass(frozen=True)
class SubjectsAnswer:
    users: list[str]
    roles: list[str]


@dataclass(frozen=True)
class ObjectsAnswer:
    allowed: list[str]
    denied: list[str]


def subjects_for(
    snapshot: PolicySnapshot, *, resource: str, action: str, domain: str | None = None
) -> SubjectsAnswer:
    """Every user and role named in the policy for whom the check is allowed (none for
    models without sub/obj/act rules: their subjects come from the entity store)."""
    if not snapshot.model.is_rbac:
        return SubjectsAnswer(users=[], roles=[])
    users, roles = snapshot.subject_sets

    def allowed(name: str) -> bool:
        return snapshot.decide(DecisionRequest.of(name, resource, action, domain)).allowed

    return SubjectsAnswer(
        users=sorted(u for u in users if allowed(u)),
        roles=sorted(r for r in roles if allowed(r)),
    )


def objects_for(
    snapshot: PolicySnapshot, *, subject: str, action: str, domain: str | None = None
) -> ObjectsAnswer:
    """Resources (as written in rules, patterns included) the subject may or may not act on.

    A pattern appears under `allowed` when a check on the pattern itself passes; narrower
    denies inside it (``api:branches:main`` under ``api:branches:*``) are listed in `denied`.
    """
    allowed: set[str] = set()
    denied: set[str] = set()
    if not snapshot.model.is_rbac:
        return ObjectsAnswer(allowed=[], denied=[])
    for perm in snapshot.permissions_for(subject, domain):
        if perm.action not in (action, "*"):
            continue
        if perm.effect == "deny":
            denied.add(perm.resource)
            continue
        check = DecisionRequest.of(subject, perm.resource, action, domain)
        (allowed if snapshot.decide(check).allowed else denied).add(perm.resource)
    return ObjectsAnswer(allowed=sorted(allowed), denied=sorted(denied - allowed))
