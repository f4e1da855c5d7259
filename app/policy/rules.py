"""Policy rules (`p, alice, api:schemas, write, allow`), where they came from, and their checks.

Rule text follows Casbin's CSV line format. Values must survive a round trip through every
store: casbin-sqlalchemy-adapter rebuilds a rule by joining its columns with ", " and
splitting on commas outside brackets, and strips surrounding whitespace. A value that would
not come back unchanged is refused before it is stored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.errors import InvalidPolicy
from app.policy.model import ModelInfo

MAX_VALUE_LENGTH = 255  # the casbin_rule column size
MAX_FIELDS = 6  # v0..v5
DB_SOURCE = "db"  # the source of every rule stored in the database


@dataclass(frozen=True, slots=True)
class Rule:
    ptype: str
    values: tuple[str, ...]
    source: str = ""  # "policy.csv:12", "db", "api", ...

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return (self.ptype, self.values)

    @property
    def is_role(self) -> bool:
        return self.ptype.startswith("g")

    def text(self) -> str:
        return ", ".join((self.ptype, *self.values))

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"ptype": self.ptype, "rule": list(self.values)}
        if self.source:
            out["source"] = self.source
        return out


_BRACKETS = frozenset("()[]")


def split_policy_line(line: str) -> list[str]:
    """Split a CSV policy line the way Casbin does: commas inside () or [] do not split."""
    if _BRACKETS.isdisjoint(line):  # the usual line: a plain split gives the same tokens
        return [t.strip() for t in line.split(",")]
    depth = 0
    tokens: list[str] = [""]
    for ch in line:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            tokens.append("")
        else:
            tokens[-1] += ch
    return [t.strip() for t in tokens]


def value_problem(value: str) -> str | None:
    """Why a single rule value cannot be stored faithfully, or None."""
    if value == "":
        return "empty value"
    if len(value) > MAX_VALUE_LENGTH:
        return f"longer than {MAX_VALUE_LENGTH} characters"
    if value != value.strip():
        return "leading or trailing whitespace"
    if value.startswith("#"):
        return "starts with '#', which Casbin reads as a comment"
    if not value.isprintable():  # Cc, Cf, Zl and Zp characters are never printable
        for ch in value:
            if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
                return f"control character U+{ord(ch):04X}"
    if _BRACKETS.isdisjoint(value):  # 110,000-rule policies load in a second, not five
        return "contains a comma outside brackets" if "," in value else None
    if split_policy_line(value) != [value]:
        return "contains a comma outside brackets"
    depth = 0
    for ch in value:
        depth += 1 if ch in "([" else -1 if ch in ")]" else 0
        if depth < 0:
            return "unbalanced brackets"
    if depth != 0:
        return "unbalanced brackets"
    return None


def rule_problems(ptype: str, values: Sequence[str], model: ModelInfo) -> list[str]:
    arity = model.arity(ptype)
    if arity is None:
        return [f"ptype {ptype!r} is not defined by the model (known: {', '.join(model.ptypes)})"]
    problems = []
    if len(values) != arity:
        problems.append(f"{ptype} rules need {arity} values, got {len(values)}")
    if len(values) > MAX_FIELDS:
        problems.append(f"at most {MAX_FIELDS} values per rule")
    for i, value in enumerate(values):
        why = value_problem(value)
        if why:
            problems.append(f"value {i + 1} ({value[:40]!r}): {why}")
    eft_index = model.field_index(ptype, "eft")
    if eft_index is not None and eft_index < len(values):
        why = model.effect_problem(values[eft_index])
        if why:
            problems.append(why)
    return problems


@dataclass(frozen=True, slots=True)
class RuleLine:
    """A rule as written in a file, before validation (for lint and error messages)."""

    path: str
    line: int
    ptype: str
    values: tuple[str, ...]


def read_rule_lines(path: Path, *, label: str | None = None) -> Iterable[RuleLine]:
    name = label or path.name
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        ptype, *values = split_policy_line(text)
        yield RuleLine(name, number, ptype, tuple(values))


def load_rule_files(paths: Iterable[Path], model: ModelInfo) -> list[Rule]:
    """Read and validate every rule; the first bad line raises `InvalidPolicy` with its place."""
    rules: list[Rule] = []
    for path in paths:
        for line in read_rule_lines(path):
            where = f"{line.path}:{line.line}"
            problems = rule_problems(line.ptype, line.values, model)
            if problems:
                raise InvalidPolicy(
                    f"{where}: {problems[0]}",
                    details={
                        "file": line.path,
                        "line": line.line,
                        "rule": [line.ptype, *line.values],
                        "problems": problems,
                    },
                )
            rules.append(Rule(line.ptype, line.values, where))
    return rules
