"""The shape of a model's matcher, as far as lint and diff can reason about it.

Most policies use a conjunction such as
``g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && (r.act == p.act || p.act == "*")``: each rule
column is compared with the request by one known function. When the whole matcher is such a
conjunction, a rule's reach can be compared with another's (is this allow always overridden
by that deny?). Anything else (an `||` at the top, an ABAC expression reading rule columns)
marks the shape as not analysable and the semantic checks stay silent rather than guess.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from casbin import util as casbin_util

from app.policy.model import ModelInfo
from app.policy.patterns import FUNCTIONS, PatternFunction

_DEFAULT_EFFECTS = {
    "some(where(p_eft==allow))&&!some(where(p_eft==deny))": "deny-overrides",
    "some(where(p_eft==allow))": "allow-overrides",
}


@dataclass(frozen=True)
class MatcherShape:
    effect: str  # "deny-overrides", "allow-overrides" or "other"
    # rule column -> how it is compared with the request, wherever the matcher says so
    columns: dict[str, PatternFunction] = field(default_factory=dict)
    subject: str | None = None  # "role" (g(r.sub, p.sub...)), "exact" (==) or None
    role_ptype: str | None = None  # the g function used for subjects
    role_domain: str | None = None  # rule column giving the role domain, if any
    analysable: bool = False  # a conjunction of recognised comparisons only


def _python(matcher: str) -> str:
    expr = casbin_util.remove_comments(matcher)
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    return re.sub(r"\b([rp]\d*)\.(\w+)", r"\1_\2", expr)  # casbin's own spelling


def _name(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _pair(a: ast.AST, b: ast.AST) -> tuple[str, str] | None:
    """(request token, rule column) for `r.x` / `p.y` in either order."""
    na, nb = _name(a), _name(b)
    if not na or not nb:
        return None
    if na.startswith("r_") and nb.startswith("p_"):
        return na[2:], nb[2:]
    if nb.startswith("r_") and na.startswith("p_"):
        return nb[2:], na[2:]
    return None


def _is_star_check(node: ast.AST) -> str | None:
    """`p.act == "*"` -> "act"."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
        left, right = node.left, node.comparators[0]
        name = _name(left)
        if name and name.startswith("p_") and isinstance(right, ast.Constant):
            return name[2:] if right.value == "*" else None
    return None


class _Collector:
    def __init__(self, roles: set[str]) -> None:
        self.roles = roles
        self.columns: dict[str, PatternFunction] = {}
        self.subject: str | None = None
        self.role_ptype: str | None = None
        self.role_domain: str | None = None

    def term(self, node: ast.AST) -> bool:
        """Record one conjunct; False when it is not a recognised comparison."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            func = node.func.id
            if func in self.roles and len(node.args) >= 2:
                pair = _pair(node.args[0], node.args[1])
                if pair is None or pair[1] != "sub":
                    return False  # roles over another column (g2(r.obj, p.obj)): not analysed
                self.subject, self.role_ptype = "role", func
                if len(node.args) == 3:
                    dom = _name(node.args[2])
                    self.role_domain = dom[2:] if dom else None
                return True
            if func in FUNCTIONS and len(node.args) == 2:
                pair = _pair(node.args[0], node.args[1])
                if pair is None:
                    return False
                self.columns[pair[1]] = FUNCTIONS[func]
                return True
            return False
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
            pair = _pair(node.left, node.comparators[0])
            if pair is None:
                return False
            if pair[1] == "sub":
                self.subject = "exact"
            self.columns.setdefault(pair[1], FUNCTIONS["=="])
            return True
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and len(node.values) == 2:
            a, b = node.values
            for eq, star in ((a, b), (b, a)):
                column = _is_star_check(star)
                if (
                    column
                    and isinstance(eq, ast.Compare)
                    and self.term(eq)
                    and column in self.columns
                ):
                    self.columns[column] = FUNCTIONS["==|*"]
                    return True
        return False

    def visit_all(self, tree: ast.AST) -> None:
        """Record every recognised comparison anywhere (for per-value checks).

        A column compared with `==` in one branch and with `"*"` in another (`(r.obj == p.obj
        && ...) || (p.obj == "*" && ...)`) takes `*` as a wildcard wherever the branches
        sit, so a `*` value there is meant, not pattern syntax under an exact comparison.
        """
        stars: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call | ast.BoolOp | ast.Compare):
                self.term(node)
            column = _is_star_check(node)
            if column:
                stars.add(column)
        for column in stars:
            if self.columns.get(column) is FUNCTIONS["=="]:
                self.columns[column] = FUNCTIONS["==|*"]


def matcher_shape(model: ModelInfo) -> MatcherShape:
    normalised = re.sub(r"\s+", "", model.effect).replace("p.eft", "p_eft")
    effect = _DEFAULT_EFFECTS.get(normalised, "other")
    try:
        tree = ast.parse(_python(model.matcher), mode="eval").body
    except SyntaxError:
        return MatcherShape(effect=effect)
    roles = set(model.role_arity)
    conjuncts = (
        tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    )
    collector = _Collector(roles)
    analysable = all(collector.term(c) for c in conjuncts)
    if not analysable:
        collector = _Collector(roles)
        collector.visit_all(tree)
    return MatcherShape(
        effect=effect,
        columns=collector.columns,
        subject=collector.subject if analysable else None,
        role_ptype=collector.role_ptype,
        role_domain=collector.role_domain,
        analysable=analysable and collector.subject is not None,
    )
