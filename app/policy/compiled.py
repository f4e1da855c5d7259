"""A matcher compiled once to Python bytecode, with Casbin's expression semantics.

Casbin evaluates the matcher with `simpleeval` for every rule of every request: a Python
tree walk per node, several microseconds a rule. Here the same expression (after Casbin's own
rewriting: ``r.sub`` -> ``r_sub``, ``&&`` -> ``and``, ``||`` -> ``or``, ``!`` -> ``not``) is
checked against a short list of node types and compiled into a generator that walks the rules
and yields the positions that match. Only what simpleeval allows is accepted: names of
request and rule tokens, the declared functions, constants, comparisons, boolean and
arithmetic operators, tuples/lists/dicts/sets, subscripts, conditional expressions and
attribute reads (never ``_``-prefixed ones). Attribute reads go through `simpleeval`'s rule
(attribute first, then item). Anything else (`eval()` in a matcher, a lambda, a comprehension)
is not compiled and the evaluator keeps Casbin's own per-rule evaluation.

Casbin's result rule is kept: a match is ``True`` or a non-zero float; ``False`` or ``0.0``
is no match; anything else is an error.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from casbin import util as casbin_util
from simpleeval import DISALLOW_METHODS, DISALLOW_PREFIXES, AttributeDoesNotExist

Scan = Callable[..., Iterator[int]]

_ALLOWED: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Attribute,
    ast.Tuple,
    ast.List,
    ast.Dict,
    ast.Set,
    ast.Subscript,
    ast.Slice,
    ast.IfExp,
)


class _NotCompiled(Exception):
    pass


def _attr(obj: Any, name: str) -> Any:
    """`obj.name` as simpleeval reads it: the attribute, else the item `obj[name]`."""
    try:
        return getattr(obj, name)
    except (AttributeError, TypeError):
        try:
            return obj[name]
        except (KeyError, TypeError):
            raise AttributeDoesNotExist(name, "") from None


def _truth(value: Any) -> bool:
    """Casbin's reading of a non-bool matcher result."""
    if isinstance(value, float):
        return value != 0
    if isinstance(value, int):  # Casbin accepts float, not int (ints are bools here)
        return value != 0
    raise TypeError("matcher result should be bool, int or float")


class _Rewrite(ast.NodeTransformer):
    """Attribute reads become `_attr(obj, "name")`; everything else is checked."""

    def __init__(self, names: set[str], functions: set[str]) -> None:
        self.names = names
        self.functions = functions

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if not isinstance(node, _ALLOWED):
            raise _NotCompiled(type(node).__name__)
        return super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id not in self.names:
            raise _NotCompiled(f"name {node.id}")
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name):
            if node.func.id not in self.functions:
                raise _NotCompiled(f"function {node.func.id}")
        elif not isinstance(node.func, ast.Attribute):
            raise _NotCompiled("call")
        if any(k.arg is None for k in node.keywords):
            raise _NotCompiled("**kwargs")
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [ast.keyword(arg=k.arg, value=self.visit(k.value)) for k in node.keywords]
        if isinstance(node.func, ast.Attribute):
            node.func = self.visit(node.func)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if any(node.attr.startswith(p) for p in DISALLOW_PREFIXES) or node.attr in (
            DISALLOW_METHODS
        ):
            raise _NotCompiled(f"attribute {node.attr}")
        value = self.visit(node.value)
        return ast.Call(
            func=ast.Name(id="_attr", ctx=ast.Load()),
            args=[value, ast.Constant(node.attr)],
            keywords=[],
        )

    def visit_Starred(self, node: ast.Starred) -> ast.AST:
        raise _NotCompiled("starred")


def casbin_python(matcher: str) -> str:
    """The matcher as Casbin hands it to simpleeval (`CoreEnforcer._get_expression`)."""
    expr = matcher.replace("&&", "and").replace("||", "or")
    return re.sub(r"!(?!=)", "not ", expr).strip()


def compile_scan(
    matcher: str,
    r_tokens: Sequence[str],
    p_tokens: Sequence[str],
    functions: dict[str, Any],
) -> Scan | None:
    """`scan(*request_values, policy)` yielding the positions of matching rules, or None
    when the matcher uses something this compiler does not take (Casbin's path is kept)."""
    if casbin_util.has_eval(matcher):
        return None
    params = [*r_tokens, *p_tokens]
    if not all(p.isidentifier() for p in params):
        return None
    try:
        tree = ast.parse(casbin_python(matcher), mode="eval")
        rewritten = _Rewrite(set(params), set(functions)).visit(tree)
    except (SyntaxError, _NotCompiled, RecursionError):
        return None
    expr = ast.unparse(ast.fix_missing_locations(rewritten))
    row = ", ".join(p_tokens) + ("," if len(p_tokens) == 1 else "")
    source = (
        f"def _scan({', '.join([*r_tokens, '_policy'])}):\n"
        f"    for _i, ({row}) in enumerate(_policy):\n"
        f"        _m = ({expr})\n"
        "        if _m is True or (_m is not False and _truth(_m)):\n"
        "            yield _i\n"
    )
    namespace: dict[str, Any] = {
        "__builtins__": {"enumerate": enumerate},
        "_attr": _attr,
        "_truth": _truth,
        **{name: fn for name, fn in functions.items() if name not in params},
    }
    exec(compile(source, "<matcher>", "exec"), namespace)  # noqa: S102 - checked tree above
    scan: Scan = namespace.pop("_scan")  # no function <-> globals cycle: freed by refcount
    return scan
