"""Dead allows (lint PL103): allow rules that a deny held by the same subjects always beats.

For an allow A and a deny D under a deny-overrides effect, A can never allow anything when
everyone holding A's subject also holds D's (D's subject is A's or a role A's inherits, in
the same domain) and D's pattern covers A's in every compared column. Denies are indexed by
subject and by the fixed part of their resource pattern, so a policy of 100,000 rules is
checked in about the time it takes to load it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from app.policy.matcher import MatcherShape
from app.policy.model import ModelInfo
from app.policy.patterns import PatternFunction
from app.policy.roles import RoleGraph
from app.policy.rules import Rule


class _DenyIndex:
    """The denies of one subject, found by the resource value they could cover."""

    def __init__(self, column: int | None, function: PatternFunction | None) -> None:
        self.column = column
        self.function = function
        self.exact: dict[str, list[Rule]] = defaultdict(list)
        self.prefixes: dict[str, list[Rule]] = defaultdict(list)  # keyMatch "api:*" -> "api:"
        self.other: list[Rule] = []
        self.lengths: set[int] = set()  # of the prefixes, so a lookup tries only those

    def add(self, deny: Rule) -> None:
        if self.column is None or self.function is None:
            self.other.append(deny)
            return
        value = deny.values[self.column]
        if self.function.exact(value) == value:
            self.exact[value].append(deny)
        elif self.function.name == "keyMatch":
            prefix = value[: value.find("*")]
            self.prefixes[prefix].append(deny)
            self.lengths.add(len(prefix))
        else:
            self.other.append(deny)

    def candidates(self, allow: Rule) -> Iterator[Rule]:
        if self.column is None:
            yield from self.other
            return
        value = allow.values[self.column]
        yield from self.exact.get(value, ())
        if self.prefixes:
            fixed = value[: value.find("*")] if "*" in value else value
            for end in self.lengths:
                if end <= len(fixed):
                    yield from self.prefixes.get(fixed[:end], ())
        yield from self.other


def dead_allows(
    rules: Sequence[Rule], model: ModelInfo, shape: MatcherShape
) -> Iterable[tuple[Rule, Rule]]:
    """(dead allow, the deny that covers it) pairs, in rule order."""
    tokens = model.policy_tokens.get("p", ())
    if not shape.analysable or shape.effect != "deny-overrides" or "eft" not in tokens:
        return
    sub, eft = tokens.index("sub"), tokens.index("eft")
    compared = [(i, shape.columns[t]) for i, t in enumerate(tokens) if t in shape.columns]
    compared = [(i, f) for i, f in compared if i not in (sub, eft)]
    obj = tokens.index("obj") if "obj" in tokens else None
    obj_function = shape.columns.get("obj")
    p_rules = [r for r in rules if r.ptype == "p"]
    denies: dict[str, _DenyIndex] = {}
    for rule in p_rules:
        if rule.values[eft] == "deny":
            denies.setdefault(rule.values[sub], _DenyIndex(obj, obj_function)).add(rule)
    if not denies:
        return
    graph = None
    if shape.subject == "role" and shape.role_ptype:
        graph = RoleGraph.from_rules(r.values for r in rules if r.ptype == shape.role_ptype)
    role_dom = tokens.index(shape.role_domain) if shape.role_domain in tokens else None
    for allow in p_rules:
        if allow.values[eft] != "allow":
            continue
        names = [allow.values[sub]]
        if graph is not None:
            domain = allow.values[role_dom] if role_dom is not None else ""
            names = list(graph.reachable(allow.values[sub], domain))
        for name in names:
            held = denies.get(name)
            if held is None:
                continue
            deny = next(
                (
                    d
                    for d in held.candidates(allow)
                    if all(f.covers(d.values[i], allow.values[i]) for i, f in compared)
                ),
                None,
            )
            if deny is not None:
                yield allow, deny
                break
