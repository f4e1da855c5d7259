"""Model-level lint about entity types and properties.

- PL107: a matcher branch reads a request entity's properties (`r.obj.owner`) but never its
  type, nor compares the entity itself with a rule column (whose values are type-scoped
  keys such as `document:*`): the branch applies to every type alike, so a `group` or a
  `folder` with an `owner` property passes the same test as a `document`.
- PL108: a matcher reads a property that no entity schema guarantees. `schema.yaml` beside
  the model lists, per type, the properties every request or stored entity of that type
  carries; a property read outside it is missing on some requests and the rule reading it
  then does not match (never an error), which is rarely what the author meant.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import yaml
from casbin import util as casbin_util

from app.policy.findings import Finding
from app.policy.model import ModelInfo

SCHEMA_FILE = "schema.yaml"
Schema = Mapping[str, Sequence[str]]
_OWN = frozenset({"type", "id"})


def read_schema(policy_dir: Path) -> dict[str, list[str]] | None:
    """`schema.yaml` (type -> guaranteed property names), or None when there is none."""
    path = policy_dir / SCHEMA_FILE
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must map each type to a list of property names")
    out: dict[str, list[str]] = {}
    for etype, names in data.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{path}: {etype}: must be a list of property names")
        out[str(etype)] = list(names)
    return out


def _tree(model: ModelInfo) -> ast.expr | None:
    expr = casbin_util.remove_comments(model.matcher)
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    try:
        return ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        return None


def _reads(node: ast.AST) -> Iterable[tuple[str, str]]:
    """(request token, property) for every `r_obj.owner` read in `node`."""
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Attribute)
            and isinstance(sub.value, ast.Name)
            and sub.value.id.startswith("r_")
        ):
            yield sub.value.id[2:], sub.attr


def _scoped(node: ast.AST) -> set[str]:
    """Request tokens whose key is compared with a rule column in `node`."""
    out: set[str] = set()
    for sub in ast.walk(node):
        names: list[ast.expr] = []
        if isinstance(sub, ast.Call):
            names = list(sub.args)
        elif isinstance(sub, ast.Compare):
            names = [sub.left, *sub.comparators]
        ids = [n.id for n in names if isinstance(n, ast.Name)]
        if any(i.startswith("p_") for i in ids):
            out |= {i[2:] for i in ids if i.startswith("r_")}
    return out


def _matcher_line(model: ModelInfo) -> int:
    for number, line in enumerate(model.text.splitlines(), start=1):
        if line.replace(" ", "").startswith("m="):
            return number
    return 0


def typing_findings(model: ModelInfo, schema: Schema | None) -> list[Finding]:
    tree = _tree(model)
    if tree is None:
        return []
    line = _matcher_line(model)
    out: list[Finding] = []
    branches = (
        tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.Or) else [tree]
    )
    for number, branch in enumerate(branches, start=1):
        reads = list(_reads(branch))
        typed = {token for token, prop in reads if prop == "type"} | _scoped(branch)
        for token in sorted({t for t, p in reads if p not in _OWN} - typed):
            out.append(
                Finding(
                    model.source,
                    line,
                    "PL107",
                    f"branch {number} reads r.{token} properties for any type: test "
                    f'r.{token}.type == "..." or compare r.{token} with a rule column',
                )
            )
    guaranteed = {name for names in (schema or {}).values() for name in names}
    seen: set[str] = set()
    for token, prop in _reads(tree):
        if prop in _OWN or prop in guaranteed or f"{token}.{prop}" in seen:
            continue
        seen.add(f"{token}.{prop}")
        where = f"no type in {SCHEMA_FILE} lists it" if schema is not None else f"no {SCHEMA_FILE}"
        out.append(
            Finding(
                model.source,
                line,
                "PL108",
                f"r.{token}.{prop} is read but no request or entity schema guarantees it "
                f"({where}); a rule reading it does not match when it is missing",
            )
        )
    return out
