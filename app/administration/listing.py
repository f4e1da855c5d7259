"""Read-side of policy administration: the live rules filtered and paged, role members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import RequestInvalid, RoleNotFound
from app.policy.rules import DB_SOURCE, Rule
from app.policy.snapshot import PolicySnapshot


@dataclass(frozen=True)
class RuleFilter:
    ptype: str | None = None
    subject: str | None = None  # p: the rule's subject; g: the member
    resource: str | None = None
    action: str | None = None
    domain: str | None = None
    source: str | None = None  # "file", "db", or a file name such as "policy.csv"

    def accepts(self, rule: Rule, snapshot: PolicySnapshot) -> bool:
        if self.ptype is not None and rule.ptype != self.ptype:
            return False
        if self.subject is not None and rule.values[0] != self.subject:
            return False
        for name, wanted in (("obj", self.resource), ("act", self.action), ("dom", self.domain)):
            if wanted is None:
                continue
            index = snapshot.model.field_index(rule.ptype, name)
            if name == "dom" and rule.ptype.startswith("g"):
                index = 2 if len(rule.values) > 2 else None
            if index is None or rule.values[index] != wanted:
                return False
        return self.source is None or _source_matches(rule.source, self.source)


def _source_matches(source: str, wanted: str) -> bool:
    if wanted == "db":
        return source == DB_SOURCE
    if wanted == "file":
        return source != DB_SOURCE
    return source.split(":", 1)[0] == wanted


def list_rules(
    snapshot: PolicySnapshot, flt: RuleFilter, *, limit: int, offset: int
) -> dict[str, Any]:
    matching = [r for r in snapshot.rules if flt.accepts(r, snapshot)]
    page = matching[offset : offset + limit]
    return {
        "items": [r.as_dict() for r in page],
        "total": len(matching),
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < len(matching) else None,
        "policy_revision": snapshot.revision,
    }


def role_members(snapshot: PolicySnapshot, role: str, domain: str | None) -> dict[str, Any]:
    """Direct members (with the rule's source) and everyone who holds the role transitively."""
    arity = snapshot.model.role_arity.get("g")
    if arity is None:
        raise RequestInvalid("this policy model has no roles")
    if arity > 2 and domain is None:
        raise RequestInvalid(
            "this model assigns roles per domain: give ?domain=",
            details={"fields": [{"field": "domain", "message": "required"}]},
        )
    dom = domain if arity > 2 and domain is not None else ""
    graph = snapshot.roles.get("g")
    sub = snapshot.model.field_index("p", "sub")
    known = graph is not None and (role in graph.roles(dom) or role in graph.members(dom))
    known = known or any(
        r.ptype == "p" and sub is not None and r.values[sub] == role for r in snapshot.rules
    )
    if not known:
        raise RoleNotFound(f"role {role!r} does not exist", details={"role": role})
    direct = [
        {"subject": r.values[0], "source": r.source}
        for r in snapshot.rules
        if r.ptype == "g" and r.values[1] == role and (arity == 2 or r.values[2] == dom)
    ]
    effective: list[str] = []
    if graph is not None:
        effective = sorted(
            m for m in graph.members(dom) if m != role and role in graph.reachable(m, dom)
        )
    return {
        "role": role,
        "domain": domain,
        "members": direct,
        "effective_members": effective,
        "policy_revision": snapshot.revision,
    }
