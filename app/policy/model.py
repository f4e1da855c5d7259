"""A Casbin model (`model.conf`) parsed once and described in the terms the engine needs.

Casbin itself accepts many malformed models and fails only at the first `enforce`; here every
model is checked when it is loaded so a bad one never becomes the live policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import casbin
from casbin import util as casbin_util

from app.errors import InvalidPolicy

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


@dataclass(frozen=True)
class ModelInfo:
    text: str
    request_fields: tuple[str, ...]  # e.g. ("subject", "resource", "action")
    policy_tokens: dict[str, tuple[str, ...]]  # ptype -> ("sub", "obj", "act", "eft")
    role_arity: dict[str, int]  # g ptype -> number of fields
    effect: str
    matcher: str
    source: str = "model.conf"

    @property
    def has_domain(self) -> bool:
        return "domain" in self.request_fields

    def arity(self, ptype: str) -> int | None:
        if ptype in self.policy_tokens:
            return len(self.policy_tokens[ptype])
        return self.role_arity.get(ptype)

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
        return {"sub", "obj", "act"} <= set(tokens)

    def new_casbin_model(self) -> Any:
        model = casbin.Enforcer.new_model(text=self.text)
        return model


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
    fields: list[str] = []
    for token in requests["r"].tokens:
        name = token.split("_", 1)[1]
        if name not in _REQUEST_FIELDS:
            raise InvalidPolicy(
                f"{source}: request token r.{name} is not one of sub, dom, obj, act",
                details={"file": source, "token": f"r.{name}"},
            )
        fields.append(_REQUEST_FIELDS[name])
    if len(set(fields)) != len(fields) or not {"subject", "resource", "action"} <= set(fields):
        raise InvalidPolicy(f"{source}: request must name sub, obj and act once each")

    policies = {k: tuple(t.split("_", 1)[1] for t in a.tokens) for k, a in section("p").items()}
    if "p" not in policies:
        raise InvalidPolicy(f"{source}: [policy_definition] needs `p = ...`")
    roles: dict[str, int] = {}
    for key, assertion in section("g").items():
        count = assertion.value.count("_")
        if count < 2:
            raise InvalidPolicy(f"{source}: role definition {key} needs at least `_, _`")
        roles[key] = count
    effects = section("e")
    matchers = section("m")
    if "e" not in effects or "m" not in matchers:
        raise InvalidPolicy(f"{source}: needs `e = ...` and `m = ...`")
    matcher = matchers["m"].value
    _check_matcher(matcher, requests["r"].tokens, policies, roles, source)
    return ModelInfo(
        text=text,
        request_fields=tuple(fields),
        policy_tokens=policies,
        role_arity=roles,
        effect=effects["e"].value,
        matcher=matcher,
        source=source,
    )


_NAME = re.compile(r"\b([rp]\d*)_(\w+)")


def _check_matcher(
    matcher: str,
    r_tokens: list[str],
    policies: dict[str, tuple[str, ...]],
    roles: dict[str, int],
    source: str,
) -> None:
    known = set(r_tokens) | {f"{k}_{t}" for k, toks in policies.items() for t in toks}
    for prefix, name in _NAME.findall(matcher):
        if f"{prefix}_{name}" not in known:
            raise InvalidPolicy(
                f"{source}: matcher uses {prefix}.{name}, which is not defined",
                details={"file": source, "token": f"{prefix}.{name}"},
            )
    for func in re.findall(r"\b(g\d*)\s*\(", matcher):
        if func not in roles:
            raise InvalidPolicy(f"{source}: matcher calls {func}() but no role definition {func}")
    try:
        expr = matcher.replace("&&", " and ").replace("||", " or ")
        expr = re.sub(r"!(?!=)", " not ", expr)
        compile(casbin_util.remove_comments(expr), source, "eval")
    except SyntaxError as exc:
        raise InvalidPolicy(
            f"{source}: matcher is not a valid expression: {exc.msg}",
            details={"file": source, "reason": exc.msg},
        ) from None
