"""Declared functions: what Casbin users register in code, written in `model.conf`.

Casbin asks for code to attach a function to a role definition
(``add_named_matching_func("g", keyMatch2)``), to its domains
(``add_named_domain_matching_func``), to conditional role links
(``add_named_link_condition_func``) or to a matcher (``add_function``). A service has no code
to register, so the model file may carry a ``[functions]`` section that says the same thing::

    [functions]
    g.match = keyMatch2         # role names in g are patterns compared with keyMatch2
    g.domain_match = keyMatch   # domains in g are patterns compared with keyMatch
    g2.condition = timeMatch    # g2 = _, _, (_, _): each link is valid between its two times
    pathOf = keyGet2            # matchers may call pathOf(...), i.e. Casbin's keyGet2

Casbin ignores sections it does not know, so the same `model.conf` still loads in a plain
`casbin.Enforcer`. Only Casbin's built-in functions can be named: a declaration chooses,
it never adds code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from casbin import util as casbin_util
from casbin.util import builtin_operators as ops

from app.errors import InvalidPolicy

SECTION = "functions"

# Casbin's matcher functions (`FunctionMap.load_function_map`): always available.
DEFAULT_MATCHER_FUNCTIONS = frozenset(
    {
        "keyMatch",
        "keyMatch2",
        "keyMatch3",
        "keyMatch4",
        "keyMatch5",
        "regexMatch",
        "ipMatch",
        "globMatch",
        "timeMatch",
    }
)

# Two-argument (value, pattern) comparisons, usable for role and domain matching.
MATCHING: dict[str, Callable[[str, str], bool]] = {
    "keyMatch": casbin_util.key_match,
    "keyMatch2": casbin_util.key_match2,
    "keyMatch3": casbin_util.key_match3,
    "keyMatch4": casbin_util.key_match4,
    "keyMatch5": casbin_util.key_match5,
    "regexMatch": casbin_util.regex_match,
    "globMatch": casbin_util.glob_match,
    "ipMatch": casbin_util.ip_match,
}

# Every built-in a matcher may name (Casbin's function map plus the keyGet helpers).
BUILTINS: dict[str, Callable[..., Any]] = {
    "keyMatch": ops.key_match_func,
    "keyMatch2": ops.key_match2_func,
    "keyMatch3": ops.key_match3_func,
    "keyMatch4": ops.key_match4_func,
    "keyMatch5": ops.key_match5_func,
    "regexMatch": ops.regex_match_func,
    "ipMatch": ops.ip_match_func,
    "globMatch": ops.glob_match_func,
    "timeMatch": ops.time_match_func,
    "keyGet": ops.key_get,
    "keyGet2": ops.key_get2,
    "keyGet3": ops.key_get3,
}

# Link conditions: (name, number of condition columns it reads).
CONDITIONS: dict[str, tuple[Callable[..., bool], int]] = {
    "timeMatch": (ops.time_match_func, 2),
}

_ROLE_KEYS = ("match", "domain_match", "condition")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class RoleFunctions:
    """What is declared for one role definition (`g`, `g2`, ...)."""

    match: str | None = None
    domain_match: str | None = None
    condition: str | None = None

    @property
    def declared(self) -> bool:
        return bool(self.match or self.domain_match or self.condition)


@dataclass(frozen=True)
class Declarations:
    roles: dict[str, RoleFunctions] = field(default_factory=dict)
    matcher: dict[str, str] = field(default_factory=dict)  # name in matchers -> built-in
    lines: dict[str, int] = field(default_factory=dict)  # "g.match" -> line in model.conf

    def for_role(self, ptype: str) -> RoleFunctions:
        return self.roles.get(ptype, RoleFunctions())

    def matcher_functions(self) -> dict[str, Callable[..., Any]]:
        """Casbin's default function map plus the declared names."""
        out = {name: BUILTINS[name] for name in DEFAULT_MATCHER_FUNCTIONS}
        out.update({alias: BUILTINS[name] for alias, name in self.matcher.items()})
        return out

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for ptype, role in self.roles.items():
            for key in _ROLE_KEYS:
                value = getattr(role, key)
                if value:
                    out[f"{ptype}.{key}"] = value
        out.update(self.matcher)
        return out


def section_lines(text: str, name: str) -> list[tuple[int, str]]:
    """(line number, text) of each non-empty, non-comment line in `[name]`."""
    out: list[tuple[int, str]] = []
    inside = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == name
            continue
        if inside and line and not line.startswith(("#", ";")):
            out.append((number, casbin_util.remove_comments(line)))
    return out


def section_line(text: str, name: str, key: str) -> int | None:
    """The line of `key = ...` in `[name]` (for errors that name the line)."""
    for number, line in section_lines(text, name):
        if line.partition("=")[0].strip() == key:
            return number
    return None


def parse_declarations(text: str, role_ptypes: set[str], *, source: str) -> Declarations:
    """The `[functions]` section of a model; `InvalidPolicy` naming the line if it is wrong."""
    roles: dict[str, dict[str, str]] = {}
    matcher: dict[str, str] = {}
    lines: dict[str, int] = {}

    def fail(number: int, message: str) -> InvalidPolicy:
        return InvalidPolicy(
            f"{source}:{number}: {message}",
            details={"file": source, "line": number, "section": SECTION, "reason": message},
        )

    for number, line in section_lines(text, SECTION):
        key, eq, value = (part.strip() for part in line.partition("="))
        if not eq or not key or not value:
            raise fail(number, "expected `name = function`")
        if key in lines:
            raise fail(number, f"{key} is declared twice (first on line {lines[key]})")
        lines[key] = number
        if "." in key:
            ptype, _, what = key.partition(".")
            if ptype not in role_ptypes:
                raise fail(number, f"{ptype} is not a role definition of this model")
            if what not in _ROLE_KEYS:
                raise fail(number, f"unknown role function {what!r} (use {', '.join(_ROLE_KEYS)})")
            known = CONDITIONS if what == "condition" else MATCHING
            if value not in known:
                raise fail(number, f"{key} must be one of {', '.join(sorted(known))}")
            roles.setdefault(ptype, {})[what] = value
            continue
        if not _IDENT.match(key):
            raise fail(number, f"{key!r} is not a valid function name")
        if key in role_ptypes or key in ("r", "p", "e", "m") or re.match(r"^[rpem]\d+$", key):
            raise fail(number, f"{key!r} is already a definition of the model")
        if key in DEFAULT_MATCHER_FUNCTIONS and value != key:
            raise fail(number, f"{key} is a Casbin built-in and cannot be redefined")
        if value not in BUILTINS:
            raise fail(number, f"unknown function {value!r} (known: {', '.join(sorted(BUILTINS))})")
        matcher[key] = value
    return Declarations(
        roles={ptype: RoleFunctions(**decl) for ptype, decl in roles.items()},
        matcher=matcher,
        lines=lines,
    )
