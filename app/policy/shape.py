"""Which models the indexed evaluator answers exactly: recognised by the shape of their matcher.

The matcher is read as Casbin evaluates it (`&&` -> `and`, `||` -> `or`, `!` -> `not`, then a
Python expression) and matched against a short list of known terms. Anything else (another
function, an attribute such as ``r.obj.owner``, `||` at the top, chained comparisons, a string
literal other than ``"*"``, a priority effect) is not recognised and the model is served by the
generic path. Being strict is the point: a recognised model must decide exactly as Casbin does.

Recognised: a conjunction, in any order, of
- subject: ``g(r.sub, p.sub)``, ``g(r.sub, p.sub, r.dom)`` (or ``p.dom`` next to the domain
  term), or ``r.sub == p.sub`` (no roles);
- resource: ``keyMatch(r.obj, p.obj)`` or ``r.obj == p.obj``;
- action: ``r.act == p.act``, optionally ``|| p.act == "*"``;
- domain (exactly when the request has one): ``r.dom == p.dom``;
with the effect allow-override, deny-override or allow-and-deny.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Literal

from casbin.constant.constants import (
    ALLOW_AND_DENY_EFFECT,
    ALLOW_OVERRIDE_EFFECT,
    DENY_OVERRIDE_EFFECT,
)

from app.policy.model import ModelInfo

EffectKind = Literal["allow_override", "deny_override", "allow_and_deny"]
RoleMode = Literal["none", "global", "domain"]

_EFFECTS: dict[str, EffectKind] = {
    ALLOW_OVERRIDE_EFFECT: "allow_override",
    DENY_OVERRIDE_EFFECT: "deny_override",
    ALLOW_AND_DENY_EFFECT: "allow_and_deny",
}


@dataclass(frozen=True, slots=True)
class IndexPlan:
    """Where each field sits in a `p` rule and in the request, and how each is compared."""

    effect: EffectKind
    sub: int
    obj: int
    act: int
    dom: int | None
    eft: int | None
    roles: RoleMode
    obj_pattern: bool  # keyMatch (True) or equality (False)
    act_wildcard: bool  # a rule's `*` action matches every action


class _NotRecognised(Exception):
    pass


def _conjuncts(node: ast.expr) -> list[ast.expr]:
    """The terms of `a and (b and c)` as [a, b, c]."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [t for v in node.values for t in _conjuncts(v)]
    return [node]


def casbin_expression(matcher: str) -> str:
    """The matcher as Casbin hands it to its evaluator (`CoreEnforcer._get_expression`)."""
    expr = matcher.replace("&&", "and").replace("||", "or")
    return re.sub(r"!(?!=)", "not ", expr).strip()


def recognise(model: ModelInfo, r_tokens: list[str], p_tokens: list[str]) -> IndexPlan | str:
    """An `IndexPlan` for a model the index decides exactly, else why not (for logs)."""
    effect = _EFFECTS.get(model.effect)
    if effect is None:
        return f"effect {model.effect!r} is not indexed"
    try:
        tree = ast.parse(casbin_expression(model.matcher), mode="eval").body
        return _Recogniser(model, r_tokens, p_tokens).plan(tree, effect)
    except SyntaxError:
        return "matcher does not parse"
    except _NotRecognised as exc:
        return str(exc)


class _Recogniser:
    def __init__(self, model: ModelInfo, r_tokens: list[str], p_tokens: list[str]) -> None:
        self.model = model
        self.r_field = dict(zip(r_tokens, model.request_fields, strict=True))
        self.p_index = {tok: i for i, tok in enumerate(p_tokens)}
        self.p_eft = self.p_index.get("p_eft")
        self.found: dict[str, tuple[int, ...]] = {}
        self.roles: RoleMode = "none"
        self.role_dom: str | None = None
        self.obj_pattern = False
        self.act_wildcard = False

    def plan(self, tree: ast.expr, effect: EffectKind) -> IndexPlan:
        for term in _conjuncts(tree):
            self._term(term)
        wanted = {"subject", "resource", "action"} | (
            {"domain"} if self.model.has_domain else set()
        )
        if set(self.found) != wanted:
            missing = sorted(wanted - set(self.found))
            raise _NotRecognised(
                f"matcher does not constrain {', '.join(missing) or 'as expected'}"
            )
        dom = self.found["domain"][0] if self.model.has_domain else None
        if self.role_dom not in (None, "r") and (dom is None or self.p_index[self.role_dom] != dom):
            raise _NotRecognised("g() takes its domain from a rule field the matcher does not tie")
        return IndexPlan(
            effect=effect,
            sub=self.found["subject"][0],
            obj=self.found["resource"][0],
            act=self.found["action"][0],
            dom=dom,
            eft=self.p_eft,
            roles=self.roles,
            obj_pattern=self.obj_pattern,
            act_wildcard=self.act_wildcard,
        )

    # -- terms ----------------------------------------------------------------------------
    def _term(self, node: ast.expr) -> None:
        if isinstance(node, ast.Call):
            self._call(node)
        elif isinstance(node, ast.Compare):
            self._set(*self._equality(node))
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            self._action_or_wildcard(node)
        else:
            raise _NotRecognised(f"matcher term {ast.unparse(node)!r} is not indexed")

    def _call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise _NotRecognised(f"call {ast.unparse(node)!r} is not indexed")
        args = [self._name(a) for a in node.args]
        name = node.func.id
        if name == "keyMatch" and len(args) == 2:
            if self.r_field.get(args[0]) != "resource" or args[1] not in self.p_index:
                raise _NotRecognised("keyMatch must compare the request resource to a rule field")
            self.obj_pattern = True
            self._set("resource", self.p_index[args[1]])
        elif name == "g" and len(args) == self.model.role_arity.get("g") and len(args) in (2, 3):
            if self.r_field.get(args[0]) != "subject" or args[1] not in self.p_index:
                raise _NotRecognised("g() must link the request subject to a rule field")
            if len(args) == 3:
                if self.r_field.get(args[2]) == "domain":
                    self.role_dom = "r"
                elif args[2] in self.p_index:
                    self.role_dom = args[2]
                else:
                    raise _NotRecognised("g() domain must be the request or rule domain")
            self.roles = "domain" if len(args) == 3 else "global"
            self._set("subject", self.p_index[args[1]])
        else:
            raise _NotRecognised(f"call {ast.unparse(node)!r} is not indexed")

    def _equality(self, node: ast.Compare) -> tuple[str, int]:
        """`r.x == p.y` (either order): the request field and the rule column."""
        if len(node.ops) != 1 or not isinstance(node.ops[0], ast.Eq):
            raise _NotRecognised(f"comparison {ast.unparse(node)!r} is not indexed")
        left, right = self._name(node.left), self._name(node.comparators[0])
        if left in self.p_index and right in self.r_field:
            left, right = right, left
        if left not in self.r_field or right not in self.p_index:
            raise _NotRecognised(f"comparison {ast.unparse(node)!r} is not indexed")
        return self.r_field[left], self.p_index[right]

    def _action_or_wildcard(self, node: ast.BoolOp) -> None:
        """`r.act == p.act || p.act == "*"` in either order."""
        if len(node.values) != 2 or not all(isinstance(v, ast.Compare) for v in node.values):
            raise _NotRecognised(f"term {ast.unparse(node)!r} is not indexed")
        column: int | None = None
        wildcard: int | None = None
        for value in node.values:
            assert isinstance(value, ast.Compare)
            star = self._wildcard_column(value)
            if star is not None:
                wildcard = star
                continue
            field, column = self._equality(value)
            if field != "action":
                raise _NotRecognised(f"term {ast.unparse(node)!r} is not indexed")
        if column is None or wildcard is None or column != wildcard:
            raise _NotRecognised(f"term {ast.unparse(node)!r} is not indexed")
        self.act_wildcard = True
        self._set("action", column)

    def _wildcard_column(self, node: ast.Compare) -> int | None:
        if len(node.ops) != 1 or not isinstance(node.ops[0], ast.Eq):
            return None
        sides = [node.left, node.comparators[0]]
        consts = [s for s in sides if isinstance(s, ast.Constant)]
        names = [s for s in sides if isinstance(s, ast.Name)]
        if len(consts) != 1 or len(names) != 1 or consts[0].value != "*":
            return None
        return self.p_index.get(names[0].id)

    def _name(self, node: ast.expr) -> str:
        if not isinstance(node, ast.Name):
            raise _NotRecognised(f"{ast.unparse(node)!r} is not a plain request or rule field")
        return node.id

    def _set(self, field: str, column: int) -> None:
        if field in self.found:
            raise _NotRecognised(f"matcher constrains the {field} more than once")
        self.found[field] = (column,)
