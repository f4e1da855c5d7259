"""The indexed evaluation path: Casbin's answer without scanning every rule.

For a recognised model (see `app.policy.shape`) a rule can only match when its subject is one
of the request subject's roles (itself included), its domain is the request's, its action is
the request's (or `*`) and its resource is the request's or a keyMatch prefix of it. So the
rules are grouped by (subject, domain, action): exact resources in one dict, pattern
resources by prefix, with the distinct prefix lengths of the group kept to probe only those.
A check costs (roles of the subject) x (1 or 2 actions) x (1 + distinct prefix lengths)
dictionary lookups, whatever the total number of rules.

Each entry keeps the policy position of the first allow and the first deny rule, so the
effect and the deciding rule come out exactly as the generic path (and Casbin) report them.
The index is built once per snapshot and only read afterwards: safe from any thread.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Protocol

from app.policy.shape import IndexPlan

NO_RULE = sys.maxsize  # "no rule" as a position, so min() picks real ones

Group = tuple[str, str, str]  # (rule subject, domain or "", action)
Firsts = list[int]  # [position of the first allow, of the first deny]


class Reachable(Protocol):
    """Role graphs the index reads: `RoleGraph`, or Casbin's manager for pattern roles."""

    def reachable(self, name: str, domain: str = "") -> dict[str, int]: ...


class _Patterns:
    """Pattern resources of one group: prefix -> firsts, probed by distinct prefix length."""

    __slots__ = ("lengths", "prefixes")

    def __init__(self) -> None:
        self.prefixes: dict[str, Firsts] = {}
        self.lengths: tuple[int, ...] = ()


class IndexedEvaluator:
    name = "indexed"

    def __init__(self, plan: IndexPlan, policy: Sequence[Sequence[str]], roles: Reachable | None):
        self.plan = plan
        self._roles = roles if plan.roles != "none" else None
        self._role_domain = plan.roles == "domain"
        self._wildcard = plan.act_wildcard
        self._by_domain = plan.dom is not None
        self._exact: dict[tuple[str, str, str, str], Firsts] = {}
        self._patterns: dict[Group, _Patterns] = {}
        self._build(policy)

    def _build(self, policy: Sequence[Sequence[str]]) -> None:
        plan = self.plan
        for position, values in enumerate(policy):
            eft = values[plan.eft] if plan.eft is not None else "allow"
            slot = 0 if eft == "allow" else 1 if eft == "deny" else -1
            if slot < 0:
                continue  # Casbin counts any other effect as indeterminate: it never decides
            dom = values[plan.dom] if plan.dom is not None else ""
            group = (values[plan.sub], dom, values[plan.act])
            resource = values[plan.obj]
            star = resource.find("*") if plan.obj_pattern else -1
            if star < 0:
                firsts = self._exact.setdefault((*group, resource), [NO_RULE, NO_RULE])
            else:
                patterns = self._patterns.get(group)
                if patterns is None:
                    patterns = self._patterns[group] = _Patterns()
                firsts = patterns.prefixes.setdefault(resource[:star], [NO_RULE, NO_RULE])
            if firsts[slot] == NO_RULE:
                firsts[slot] = position
        for patterns in self._patterns.values():
            patterns.lengths = tuple(sorted({len(p) for p in patterns.prefixes}))

    @property
    def size(self) -> int:
        return len(self._exact) + sum(len(p.prefixes) for p in self._patterns.values())

    # -- evaluation -----------------------------------------------------------------------
    def check(self, subject: str, resource: str, action: str, domain: str) -> tuple[bool, int]:
        """(allowed, policy position of the deciding rule or -1), as Casbin decides."""
        allow, deny = self.firsts(subject, resource, action, domain)
        effect = self.plan.effect
        if effect == "allow_and_deny":
            if deny != NO_RULE:
                return False, deny
            return (True, allow) if allow != NO_RULE else (False, -1)
        if effect == "deny_override":
            if deny != NO_RULE:
                return False, deny
            return True, allow if allow != NO_RULE else -1
        if allow != NO_RULE:  # allow_override
            return True, allow
        return False, deny if deny != NO_RULE else -1

    def firsts(self, subject: str, resource: str, action: str, domain: str) -> tuple[int, int]:
        """Positions of the first matching allow and deny rules (`NO_RULE` when none)."""
        subjects: Any
        if self._roles is None:
            subjects = (subject,)
        else:
            subjects = self._roles.reachable(subject, domain if self._role_domain else "")
        actions = (action, "*") if self._wildcard and action != "*" else (action,)
        rule_domain = domain if self._by_domain else ""
        exact = self._exact
        patterns = self._patterns
        allow = deny = NO_RULE
        size = len(resource)
        for sub in subjects:
            for act in actions:
                hit = exact.get((sub, rule_domain, act, resource))
                if hit is not None:
                    allow = min(allow, hit[0])
                    deny = min(deny, hit[1])
                group = patterns.get((sub, rule_domain, act))
                if group is None:
                    continue
                prefixes = group.prefixes
                for length in group.lengths:
                    if length > size:
                        break
                    hit = prefixes.get(resource[:length])
                    if hit is not None:
                        allow = min(allow, hit[0])
                        deny = min(deny, hit[1])
        return allow, deny
