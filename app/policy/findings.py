"""Lint findings: stable codes, where they point, and how they print.

Codes never change meaning once released, so CI configurations and suppressions can name
them. PL0xx are errors (the policy is broken or does not mean what it says; a reload with one
is refused), PL1xx are warnings (suspicious; fatal only with `--strict`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

CODES: dict[str, tuple[Severity, str]] = {
    "PL001": ("error", "the model (model.conf) is missing or invalid"),
    "PL002": ("error", "the rule's ptype is not defined by the model"),
    "PL003": ("error", "wrong number of values for the ptype"),
    "PL004": ("error", "a value cannot be stored and read back unchanged"),
    "PL005": ("error", "the effect column is not allow or deny (outside priority effects)"),
    "PL006": ("error", "role inheritance forms a cycle"),
    "PL007": ("error", "the matcher's function cannot compile the pattern"),
    "PL008": ("error", "keyMatch ignores text after the first '*': the rule grants more"),
    "PL009": ("error", "a policy file cannot be read (missing permission, not UTF-8)"),
    "PL101": ("warning", "exact duplicate of an earlier rule"),
    "PL102": ("warning", "assignment to a role that grants nothing (unknown role)"),
    "PL103": ("warning", "allow rule is dead: a deny with the same reach covers it"),
    "PL104": ("warning", "resource pattern can never match a request"),
    "PL105": ("warning", "pattern syntax under an exact (==) comparison"),
    "PL106": ("warning", "an effect other than allow/deny: Casbin counts the rule as no effect"),
    "PL107": ("warning", "a matcher branch reads entity properties without testing the type"),
    "PL108": ("warning", "a property is read that no entity schema (schema.yaml) guarantees"),
}

_LOCATION = re.compile(r"^(?P<file>.+):(?P<line>\d+)$")


def location(source: str) -> tuple[str, int]:
    """("policy.csv", 12) from a rule source "policy.csv:12"; ("db", 0) for others."""
    m = _LOCATION.match(source)
    if m:
        return m["file"], int(m["line"])
    return source or "<rule>", 0


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    code: str
    message: str
    rule: tuple[str, ...] = ()  # ptype + values, when the finding is about one rule

    @property
    def severity(self) -> Severity:
        return CODES[self.code][0]

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        """Identity regardless of position (to tell new findings from old ones)."""
        return (self.code, self.message, self.rule)

    def text(self) -> str:
        return f"{self.file}:{self.line}: {self.code} {self.severity}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "rule": list(self.rule),
        }


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def failed(self, *, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def sorted(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (f.file, f.line, f.code, f.message))

    def summary(self) -> str:
        e, w = len(self.errors), len(self.warnings)
        return f"{e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''}"

    def as_dict(self, *, strict: bool = False) -> dict[str, Any]:
        return {
            "ok": not self.failed(strict=strict),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.as_dict() for f in self.sorted()],
        }


def new_findings(before: Sequence[Finding], after: Sequence[Finding]) -> list[Finding]:
    """Findings of `after` that `before` does not have (a change's own consequences)."""
    seen = {f.key for f in before}
    return [f for f in after if f.key not in seen]
