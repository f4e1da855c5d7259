"""`policy diff`: which decisions flip between two policies (impact analysis for review).

Every (subject, resource, action[, domain]) that either policy mentions is decided by both:
subjects are every user and role named in a rule or an assignment (so users that only reach
a changed rule through their roles are included), resources and actions every value written
in a rule (patterns are asked about as written). When the matcher only looks at a subject
through its roles, subjects that reach the same rule subjects in both policies decide alike,
so one of them is evaluated for the whole group.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from app.errors import AuthzError, InvalidPolicy
from app.policy.matcher import matcher_shape
from app.policy.request import DecisionRequest
from app.policy.rules import Rule
from app.policy.snapshot import PolicySnapshot

_COLUMNS = {
    "subject": ("sub", "subject", "user"),
    "resource": ("obj", "object", "resource", "res"),
    "action": ("act", "action"),
    "domain": ("dom", "domain", "tenant"),
}


@dataclass(frozen=True)
class Flip:
    subject: str
    resource: str
    action: str
    domain: str | None
    before: str  # "allow", "deny" or "error"
    after: str
    before_rule: Rule | None
    after_rule: Rule | None

    def text(self) -> str:
        where = f" in {self.domain}" if self.domain is not None else ""
        head = f"{self.subject} {self.resource} {self.action}{where}: {self.before} -> {self.after}"
        if self.after_rule is not None:
            why = f"rule '{self.after_rule.text()}' {self.after_rule.source}".rstrip()
        elif self.before_rule is not None:
            why = f"no rule matches now; was '{self.before_rule.text()}' {self.before_rule.source}"
        else:
            why = "no rule matches"
        return f"{head} ({why.rstrip()})"

    def as_dict(self) -> dict[str, Any]:
        def rule(r: Rule | None) -> dict[str, object] | None:
            return r.as_dict() if r else None

        return {
            "subject": self.subject,
            "resource": self.resource,
            "action": self.action,
            "domain": self.domain,
            "before": self.before,
            "after": self.after,
            "before_rule": rule(self.before_rule),
            "after_rule": rule(self.after_rule),
        }


@dataclass
class PolicyDiff:
    flips: list[Flip] = field(default_factory=list)
    added: list[Rule] = field(default_factory=list)
    removed: list[Rule] = field(default_factory=list)
    evaluated: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": bool(self.flips),
            "flips": [f.as_dict() for f in self.flips],
            "count": len(self.flips),
            "rules_added": [r.as_dict() for r in self.added],
            "rules_removed": [r.as_dict() for r in self.removed],
            "evaluated": self.evaluated,
        }


def _column(snapshot: PolicySnapshot, kind: str) -> int | None:
    tokens = snapshot.model.policy_tokens.get("p", ())
    return next((tokens.index(n) for n in _COLUMNS[kind] if n in tokens), None)


def _mentioned(snapshot: PolicySnapshot) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for kind in _COLUMNS:
        index = _column(snapshot, kind)
        if index is not None:
            out[kind].update(r.values[index] for r in snapshot.rules if r.ptype == "p")
    for rule in snapshot.rules:
        if rule.ptype == "g":
            out["subject"].update(rule.values[:2])
            if len(rule.values) > 2:
                out["domain"].add(rule.values[2])
    return out


def _subject_groups(
    old: PolicySnapshot, new: PolicySnapshot, subjects: set[str], domain: str | None
) -> list[list[str]]:
    """Subjects that must decide alike in both policies, when the matcher lets us tell."""
    shapes = [matcher_shape(s.model) for s in (old, new)]
    if not all(s.analysable and s.subject == "role" and "sub" not in s.columns for s in shapes):
        return [[s] for s in sorted(subjects)]
    signatures: dict[tuple[frozenset[str], ...], list[str]] = defaultdict(list)
    for subject in sorted(subjects):
        key = tuple(_reach(s, subject, domain) for s in (old, new))
        signatures[key].append(subject)
    return list(signatures.values())


def _reach(snapshot: PolicySnapshot, subject: str, domain: str | None) -> frozenset[str]:
    graph = snapshot.roles.get("g")
    names = {subject}
    if graph is not None:
        dom = domain if domain is not None and snapshot.model.role_arity.get("g", 2) > 2 else ""
        names |= set(graph.reachable(subject, dom))
    index = _column(snapshot, "subject")
    ruled = (
        {r.values[index] for r in snapshot.rules if r.ptype == "p"} if index is not None else set()
    )
    return frozenset(names & ruled)


def _decide(snapshot: PolicySnapshot, request: DecisionRequest) -> tuple[str, Rule | None]:
    try:
        decision = snapshot.decide(request, explain=True)
    except AuthzError:
        return "error", None
    return decision.effect, decision.rule


def _state(snapshot: PolicySnapshot, request: DecisionRequest) -> str:
    try:
        return snapshot.decide(request).effect
    except AuthzError:
        return "error"


def diff_policies(old: PolicySnapshot, new: PolicySnapshot) -> PolicyDiff:
    if old.model.request_fields != new.model.request_fields:
        raise InvalidPolicy(
            "the two models take different requests "
            f"({', '.join(old.model.request_fields)} vs {', '.join(new.model.request_fields)}); "
            "their decisions cannot be compared"
        )
    mentioned = _mentioned(old)
    for kind, values in _mentioned(new).items():
        mentioned[kind] |= values
    result = PolicyDiff()
    old_keys, new_keys = {r.key for r in old.rules}, {r.key for r in new.rules}
    result.added = [r for r in new.rules if r.key not in old_keys]
    result.removed = [r for r in old.rules if r.key not in new_keys]
    domains: list[str | None] = [*sorted(mentioned["domain"])] if old.model.has_domain else [None]
    for domain in domains:
        for group in _subject_groups(old, new, mentioned["subject"], domain):
            for resource in sorted(mentioned["resource"]):
                for action in sorted(mentioned["action"]):
                    request = DecisionRequest.of(group[0], resource, action, domain)
                    result.evaluated += len(group)
                    if _state(old, request) == _state(new, request):
                        continue
                    for subject in group:
                        req = DecisionRequest.of(subject, resource, action, domain)
                        (before, b_rule), (after, a_rule) = _decide(old, req), _decide(new, req)
                        result.flips.append(
                            Flip(subject, resource, action, domain, before, after, b_rule, a_rule)
                        )
    result.flips.sort(key=lambda f: (f.subject, f.resource, f.action, f.domain or ""))
    return result
