"""A Casbin model (`model.conf`) parsed once and described in the terms the engine needs.

Casbin itself accepts many malformed models and fails only at the first `enforce`; here every
model is checked when it is loaded so a bad one never becomes the live policy.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import casbin
from casbin import util as casbin_util

from app.errors import InvalidPolicy, RequestInvalid
from app.policy.functions import CONDITIONS, Declarations, parse_declarations, section_line

# Request tokens the engine knows how to fill, by the names model authors use.
_REQUEST_FIELDS: dict[str, str] = {
    "sub": "subject",
    "subject": "subject",
    "user": "subject",
    "obj": "resource",
    "object": "resource",
    "resource": "resource",
    "res": "resource",
    "act": "action",
    "action": "action",
    "dom": "domain",
    "domain": "domain",
    "tenant": "domain",
}
_SECTIONS = ("request_definition", "policy_definition", "policy_effect", "matchers")
_FIELD_ORDER = ("subject", "resource", "action")


def map_request_tokens(names: Sequence[str]) -> tuple[str, ...]:
    """What fills each request token: "subject", "resource", "action", "domain" or
    "context.<name>".

    Names Casbin authors use map by name (sub/user -> subject, obj/resource -> resource,
    act/action -> action, dom/tenant -> domain). Any other name takes the first of subject,
    resource and action that no token names (``r = user, thing, action``: thing is the
    resource); once those are taken, a token is read from the request's context under its
    own name (``r = sub, obj, act, env``: env comes from ``context.env``).
    """
    fields: list[str | None] = []
    taken: set[str] = set()
    for name in names:
        known = _REQUEST_FIELDS.get(name)
        if known is not None and known not in taken:
            taken.add(known)
            fields.append(known)
        else:
            fields.append(None)
    free = [f for f in _FIELD_ORDER if f not in taken]
    out: list[str] = []
    for name, found in zip(names, fields, strict=True):
        if found is None:
            found = free.pop(0) if free and name not in _REQUEST_FIELDS else f"context.{name}"
        out.append(found)
    return tuple(out)


@dataclass(frozen=True)
class Definition:
    """One request/policy/matcher triple: `r`/`p`/`m`, or `r2`/`p2`/`m2` (suffix "2")."""

    suffix: str
    request_tokens: tuple[str, ...]  # as written: ("sub", "obj", "act")
    request_fields: tuple[str, ...]  # what fills each: ("subject", "resource", "action")
    matcher: str

    @property
    def names(self) -> dict[str, str]:
        s = self.suffix
        return {"request": f"r{s}", "policy": f"p{s}", "matcher": f"m{s}"}


@dataclass(frozen=True)
class ModelInfo:
    text: str
    request_fields: tuple[str, ...]  # e.g. ("subject", "resource", "action")
    policy_tokens: dict[str, tuple[str, ...]]  # ptype -> ("sub", "obj", "act", "eft")
    role_arity: dict[str, int]  # g ptype -> number of name/domain fields
    effect: str
    matcher: str
    source: str = "model.conf"
    role_params: dict[str, int] = field(default_factory=dict)  # g ptype -> condition columns
    definitions: dict[str, Definition] = field(default_factory=dict)  # suffix -> definition
    functions: Declarations = field(default_factory=Declarations)

    @property
    def has_domain(self) -> bool:
        return "domain" in self.request_fields

    def arity(self, ptype: str) -> int | None:
        if ptype in self.policy_tokens:
            return len(self.policy_tokens[ptype])
        if ptype in self.role_arity:
            return self.role_arity[ptype] + self.role_params.get(ptype, 0)
        return None

    @property
    def ptypes(self) -> tuple[str, ...]:
        return (*self.policy_tokens, *self.role_arity)

    def field_index(self, ptype: str, name: str) -> int | None:
        tokens = self.policy_tokens.get(ptype, ())
        return tokens.index(name) if name in tokens else None

    @property
    def is_rbac(self) -> bool:
        """`p` has sub/obj/act columns, so permission listings and reverse queries apply."""
        tokens = self.policy_tokens.get("p", ())
        return {"sub", "obj", "act"} <= set(tokens) and set(self.request_fields) >= set(
            _FIELD_ORDER
        )

    @property
    def priority_effect(self) -> bool:
        """`priority(p.eft)` / `subjectPriority(p.eft)`: rules may carry other effects
        (``indeterminate``), which Casbin counts as no effect."""
        return "priority(" in self.effect.replace(" ", "").lower()

    def effect_problem(self, value: str) -> str | None:
        if value in ("allow", "deny") or self.priority_effect:
            return None
        return f"effect must be 'allow' or 'deny', got {value!r}"

    def definition(self, name: str | None) -> Definition:
        """The definition a request selects: None/"" (the first), "2" or "r2" (the second)."""
        suffix = (name or "").removeprefix("r")
        found = self.definitions.get(suffix)
        if found is None:
            known = ", ".join(d.names["request"] for d in self.definitions.values())
            raise RequestInvalid(
                f"this policy model has no request definition {name!r} (known: {known})",
                details={"fields": [{"field": "definition", "message": f"one of {known}"}]},
            )
        return found

    def new_casbin_model(self) -> Any:
        model = casbin.Enforcer.new_model(text=self.text)
        return model


def _line_of(text: str, section: str, key: str) -> int | None:
    return section_line(text, section, key)


def parse_model(text: str, *, source: str = "model.conf") -> ModelInfo:
    """Parse and check a model; raise `InvalidPolicy` naming the file and what is wrong."""
    missing = [s for s in _SECTIONS if f"[{s}]" not in text]
    if missing:
        raise InvalidPolicy(
            f"{source}: missing section [{missing[0]}]",
            details={"file": source, "section": missing[0]},
        )
    try:
        model = casbin.Enforcer.new_model(text=text)
    except Exception as exc:  # casbin raises bare exceptions on syntax errors
        raise InvalidPolicy(
            f"{source}: cannot parse model: {exc}", details={"file": source, "reason": str(exc)}
        ) from None

    def section(key: str) -> dict[str, Any]:
        try:
            return dict(model.model[key].items())
        except KeyError:
            return {}

    requests = section("r")
    if "r" not in requests:
        raise InvalidPolicy(f"{source}: [request_definition] needs `r = ...`")
    policies = {k: tuple(t.split("_", 1)[1] for t in a.tokens) for k, a in section("p").items()}
    if "p" not in policies:
        raise InvalidPolicy(f"{source}: [policy_definition] needs `p = ...`")
    roles: dict[str, int] = {}
    params: dict[str, int] = {}
    for key, assertion in section("g").items():
        count = len(assertion.tokens)
        if count < 2:
            raise InvalidPolicy(f"{source}: role definition {key} needs at least `_, _`")
        roles[key] = count
        if assertion.params_tokens:
            params[key] = len(assertion.params_tokens)
    declarations = parse_declarations(text, set(roles), source=source)
    _check_roles(text, roles, params, declarations, source)
    effects = section("e")
    matchers = section("m")
    if "e" not in effects or "m" not in matchers:
        raise InvalidPolicy(f"{source}: needs `e = ...` and `m = ...`")
    definitions: dict[str, Definition] = {}
    for rkey, assertion in requests.items():
        suffix = rkey[1:]
        if f"p{suffix}" not in policies or f"m{suffix}" not in matchers:
            continue
        tokens = tuple(t.split("_", 1)[1] for t in assertion.tokens)
        if len(set(tokens)) != len(tokens):
            raise InvalidPolicy(f"{source}: request definition {rkey} names a token twice")
        definitions[suffix] = Definition(
            suffix=suffix,
            request_tokens=tokens,
            request_fields=map_request_tokens(tokens),
            matcher=matchers[f"m{suffix}"].value,
        )
    functions = set(declarations.matcher_functions()) | set(roles)
    for suffix, definition in definitions.items():
        r_tokens = [f"r{suffix}_{t}" for t in definition.request_tokens]
        p_tokens = policies[f"p{suffix}"]
        _check_matcher(definition.matcher, r_tokens, f"p{suffix}", p_tokens, functions, source)
    return ModelInfo(
        text=text,
        request_fields=definitions[""].request_fields,
        policy_tokens=policies,
        role_arity=roles,
        effect=effects["e"].value,
        matcher=definitions[""].matcher,
        source=source,
        role_params=params,
        definitions=definitions,
        functions=declarations,
    )


def _check_roles(
    text: str,
    roles: dict[str, int],
    params: dict[str, int],
    declarations: Declarations,
    source: str,
) -> None:
    for ptype in roles:
        declared = declarations.for_role(ptype)
        line = _line_of(text, "role_definition", ptype)
        where = f"{source}:{line}" if line else source
        if ptype in params and declared.condition is None:
            raise InvalidPolicy(
                f"{where}: {ptype} declares link conditions {'(' + ', '.join('_' * params[ptype])}"
                f") but no condition function; add `{ptype}.condition = timeMatch` to "
                "[functions] (links are then valid only inside their time window)",
                details={"file": source, "line": line, "ptype": ptype, "reason": "condition"},
            )
        if declared.condition is not None and (declared.match or declared.domain_match):
            number = declarations.lines.get(f"{ptype}.condition")
            raise InvalidPolicy(
                f"{source}:{number}: {ptype} cannot have both a link condition and pattern "
                "matching (Casbin applies matching functions only to unconditional links)",
                details={"file": source, "line": number, "ptype": ptype},
            )
        if declared.condition is not None:
            want = CONDITIONS[declared.condition][1]
            if params.get(ptype, 0) != want:
                number = declarations.lines.get(f"{ptype}.condition")
                raise InvalidPolicy(
                    f"{source}:{number}: {declared.condition} reads {want} condition columns; "
                    f"declare them in the role definition ({ptype} = _, _, (_, _))",
                    details={"file": source, "line": number, "ptype": ptype},
                )
        if declared.domain_match is not None and roles[ptype] < 3:
            number = declarations.lines.get(f"{ptype}.domain_match")
            raise InvalidPolicy(
                f"{source}:{number}: {ptype} has no domain column to match",
                details={"file": source, "line": number, "ptype": ptype},
            )


_NAME = re.compile(r"\b([rp]\d*)_(\w+)")


def _check_matcher(
    matcher: str,
    r_tokens: list[str],
    ptype: str,
    p_tokens: tuple[str, ...],
    functions: set[str],
    source: str,
) -> None:
    known = set(r_tokens) | {f"{ptype}_{t}" for t in p_tokens}
    for prefix, name in _NAME.findall(matcher):
        if f"{prefix}_{name}" not in known:
            raise InvalidPolicy(
                f"{source}: matcher uses {prefix}.{name}, which is not defined",
                details={"file": source, "token": f"{prefix}.{name}"},
            )
    try:
        expr = matcher.replace("&&", " and ").replace("||", " or ")
        expr = re.sub(r"!(?!=)", " not ", expr)
        tree = ast.parse(casbin_util.remove_comments(expr), source, "eval")
    except SyntaxError as exc:
        raise InvalidPolicy(
            f"{source}: matcher is not a valid expression: {exc.msg}",
            details={"file": source, "reason": exc.msg},
        ) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            func = node.func.id
            if func == "eval" or func in functions:
                continue
            if re.fullmatch(r"g\d*", func):
                raise InvalidPolicy(
                    f"{source}: matcher calls {func}() but no role definition {func}"
                )
            raise InvalidPolicy(
                f"{source}: matcher calls {func}(), which is not a Casbin built-in; declare "
                f"it in [functions] (e.g. `{func} = keyGet2`)",
                details={"file": source, "function": func},
            )
