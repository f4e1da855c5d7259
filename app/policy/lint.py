"""`policy lint`: everything wrong or suspicious in a set of rules, with file and line.

`lint_rules(model, rules)` works on `Rule`s from any source (a rule's `source` such as
"policy.csv:12" says where it was written), so the same checks serve the CLI, hot reload and
the admin API's candidate policies. The codes are listed in `app.policy.findings`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from app.policy.findings import Finding, location
from app.policy.matcher import MatcherShape, matcher_shape
from app.policy.model import ModelInfo
from app.policy.rules import MAX_FIELDS, Rule, value_problem
from app.policy.shadowing import dead_allows


def finding(rule: Rule, code: str, message: str) -> Finding:
    file, line = location(rule.source)
    return Finding(file, line, code, message, (rule.ptype, *rule.values))


def lint_rules(model: ModelInfo, rules: Sequence[Rule]) -> list[Finding]:
    """Every finding for `rules` under `model`, in rule order within each check."""
    return _lint(model, rules, validated=False, warnings=True)


def lint_errors(model: ModelInfo, validated_rules: Sequence[Rule]) -> list[Finding]:
    """Only the errors, for rules a loader already checked one by one (the load gate)."""
    return _lint(model, validated_rules, validated=True, warnings=False)


def _lint(
    model: ModelInfo, rules: Sequence[Rule], *, validated: bool, warnings: bool
) -> list[Finding]:
    out: list[Finding] = []
    valid: list[Rule] = list(rules) if validated else []
    if not validated:
        for rule in rules:
            problems = list(_shape_findings(rule, model))
            out.extend(problems)
            if not problems:
                valid.append(rule)
    if warnings:
        out.extend(_duplicates(valid))
    unique = list({r.key: r for r in reversed(valid)}.values())[::-1]
    shape = matcher_shape(model)
    out.extend(
        f for f in _pattern_findings(unique, model, shape) if warnings or f.severity == "error"
    )
    out.extend(_cycles(unique, model))
    if warnings:
        out.extend(_unknown_roles(unique, model, shape))
        out.extend(_dead_allows(unique, model, shape))
    return out


def _shape_findings(rule: Rule, model: ModelInfo) -> Iterable[Finding]:
    arity = model.arity(rule.ptype)
    if arity is None:
        known = ", ".join(model.ptypes)
        yield finding(rule, "PL002", f"ptype {rule.ptype!r} is not defined by the model ({known})")
        return
    if len(rule.values) != arity or len(rule.values) > MAX_FIELDS:
        yield finding(
            rule, "PL003", f"{rule.ptype} rules need {arity} values, got {len(rule.values)}"
        )
        return
    for i, value in enumerate(rule.values):
        why = value_problem(value)
        if why:
            yield finding(rule, "PL004", f"value {i + 1} ({value[:40]!r}): {why}")
    eft = model.field_index(rule.ptype, "eft")
    if eft is not None and rule.values[eft] not in ("allow", "deny"):
        why = model.effect_problem(rule.values[eft])
        if why:
            yield finding(rule, "PL005", why)
        else:
            yield finding(
                rule,
                "PL106",
                f"effect {rule.values[eft]!r} is neither allow nor deny: the rule never "
                "decides (Casbin counts it as no effect)",
            )


def _duplicates(rules: Sequence[Rule]) -> Iterable[Finding]:
    first: dict[tuple[str, tuple[str, ...]], Rule] = {}
    for rule in rules:
        earlier = first.setdefault(rule.key, rule)
        if earlier is not rule:
            yield finding(rule, "PL101", f"duplicate of {earlier.source or 'an earlier rule'}")


def _pattern_findings(
    rules: Sequence[Rule], model: ModelInfo, shape: MatcherShape
) -> Iterable[Finding]:
    for rule in rules:
        tokens = model.policy_tokens.get(rule.ptype, ())
        for column, value in zip(tokens, rule.values, strict=False):
            function = shape.columns.get(column)
            if function is None or column in ("sub", "eft"):
                continue
            problem = function.problem(value)
            if problem:
                yield finding(rule, problem.code, f"p.{column}: {problem.message}")


def _domain_of(values: tuple[str, ...], width: int = 3) -> str:
    """The domain of a role link (`g, member, role, domain`); condition columns are not."""
    return values[2] if width > 2 and len(values) > 2 else ""


def _cycles(rules: Sequence[Rule], model: ModelInfo) -> Iterable[Finding]:
    for ptype, width in model.role_arity.items():
        yield from _cycles_of(ptype, rules, width)


def _cycles_of(ptype: str, rules: Sequence[Rule], width: int = 3) -> Iterable[Finding]:
    """Each cycle once, at the assignment that closes it (reading rules in order)."""
    links: dict[tuple[str, str], list[str]] = defaultdict(list)
    has_members: set[tuple[str, str]] = set()
    for rule in rules:
        if rule.ptype != ptype:
            continue
        member, role = rule.values[0], rule.values[1]
        domain = _domain_of(rule.values, width)
        if (domain, member) in has_members or member == role:
            path = [role] if member == role else _path(links, domain, role, member)
            if path is not None:
                chain = " -> ".join([member, *path])
                yield finding(rule, "PL006", f"role cycle: {chain}")
        links[(domain, member)].append(role)
        has_members.add((domain, role))


def role_cycles_closed_by(rule: Rule, rules: Sequence[Rule]) -> list[Finding]:
    """PL006 for the cycle that adding the role assignment `rule` after `rules` closes."""
    found = _cycles_of(rule.ptype, [*rules, rule])
    return [f for f in found if f.rule == (rule.ptype, *rule.values)]


def _path(
    links: dict[tuple[str, str], list[str]], domain: str, start: str, goal: str
) -> list[str] | None:
    previous: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        nxt = []
        for name in frontier:
            for role in links.get((domain, name), ()):
                if role in seen:
                    continue
                previous[role] = name
                if role == goal:
                    chain = [goal]
                    while chain[-1] != start:
                        chain.append(previous[chain[-1]])
                    return chain[::-1]
                seen.add(role)
                nxt.append(role)
        frontier = nxt
    return None


def _unknown_roles(
    rules: Sequence[Rule], model: ModelInfo, shape: MatcherShape
) -> Iterable[Finding]:
    """Assignments to a role that no rule gives anything and that inherits no role."""
    ptype = shape.role_ptype or ("g" if "g" in model.role_arity else None)
    if ptype is None or model.field_index("p", "sub") is None:
        return
    # a role is "defined" by any policy type that has a subject column (p, p2, ...)
    subjects = {k: model.field_index(k, "sub") for k in model.policy_tokens}
    domains = {k: model.field_index(k, "dom") for k in model.policy_tokens}
    patterns = model.functions.for_role(ptype)
    by_domain = (
        model.role_arity.get(ptype, 2) > 2
        and domains.get("p") is not None
        and patterns.domain_match is None  # pattern domains: a rule's domain may cover it
    )
    if patterns.match is not None:
        return  # pattern roles: a rule may name the role through a pattern
    defined: set[tuple[str, str]] = set()
    for rule in rules:
        sub, dom = subjects.get(rule.ptype), domains.get(rule.ptype)
        if sub is not None:
            where = rule.values[dom] if by_domain and dom is not None else ""
            defined.add((where, rule.values[sub]))
        elif rule.ptype == ptype:
            defined.add((_domain_of(rule.values, 3) if by_domain else "", rule.values[0]))
    for rule in rules:
        if rule.ptype != ptype:
            continue
        domain = _domain_of(rule.values, 3) if by_domain else ""
        role = rule.values[1]
        if (domain, role) not in defined:
            where = f" in domain {domain!r}" if domain else ""
            yield finding(
                rule,
                "PL102",
                f"role {role!r} grants nothing{where}: no p rule names it and it inherits "
                "no role (a typo?)",
            )


def _dead_allows(rules: Sequence[Rule], model: ModelInfo, shape: MatcherShape) -> Iterable[Finding]:
    for allow, deny in dead_allows(rules, model, shape):
        yield finding(
            allow,
            "PL103",
            f"allow is dead: every request it matches is denied by "
            f"'{deny.text()}' ({deny.source or 'rule'})",
        )
