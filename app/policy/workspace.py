"""A policy as it sits on disk (or in the configured sources), read for checking.

Loading for service stops at the first bad line; checking reads everything it can so that one
run reports every problem, each with its file and line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.errors import InvalidPolicy
from app.policy.findings import Finding, LintReport
from app.policy.lint import lint_errors, lint_rules
from app.policy.model import ModelInfo, parse_model
from app.policy.rules import Rule, read_rule_lines
from app.policy.sources import MODEL_FILE, FileRuleSource, PolicyLoader, rule_files
from app.policy.typing_lint import SCHEMA_FILE, read_schema, typing_findings


@dataclass
class PolicyInput:
    """A model (None when it is broken), every rule as written, and what reading found."""

    model: ModelInfo | None
    rules: list[Rule] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    schema: dict[str, list[str]] | None = None  # schema.yaml: type -> guaranteed properties

    def lint(self) -> LintReport:
        report = LintReport(list(self.findings))
        if self.model is not None:
            report.extend(lint_rules(self.model, self.rules))
            report.extend(typing_findings(self.model, self.schema))
        return report


def _model_line(text: str, error: InvalidPolicy) -> int:
    """The line of model.conf an error is about, as well as the message lets us tell."""
    details = error.details
    needles = []
    if "token" in details:
        needles.append(str(details["token"]))
    if "section" in details:
        return 1
    for section, key in (("matcher", "m"), ("request", "r"), ("policy_definition", "p")):
        if section in error.message:
            needles.append(f"{key} =")
    for needle in needles:
        for number, line in enumerate(text.splitlines(), start=1):
            if needle in line or needle.replace(" ", "") in line.replace(" ", ""):
                return number
    return 1


def read_model_checked(path: Path, *, label: str) -> tuple[ModelInfo | None, list[Finding]]:
    if not path.is_file():
        return None, [Finding(label, 0, "PL001", "model file not found")]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Finding(label, 0, "PL001", f"cannot read the model: {exc}")]
    try:
        return parse_model(text, source=label), []
    except InvalidPolicy as exc:
        message = re.sub(rf"^{re.escape(label)}:\s*", "", exc.message)
        return None, [Finding(label, _model_line(text, exc), "PL001", message)]


def read_rule_files(paths: Sequence[Path], *, prefix: str = "") -> PolicyInput:
    """Every rule line of `paths`, unvalidated, labelled `{prefix}{name}:{line}`."""
    out = PolicyInput(model=None)
    for path in paths:
        label = f"{prefix}{path.name}"
        try:
            lines = list(read_rule_lines(path, label=label))
        except (OSError, UnicodeDecodeError) as exc:
            out.findings.append(Finding(label, 0, "PL009", f"cannot read the file: {exc}"))
            continue
        out.rules.extend(Rule(x.ptype, x.values, f"{x.path}:{x.line}") for x in lines)
    return out


def read_policy_dir(policy_dir: Path, *, prefix: str | None = None) -> PolicyInput:
    """The model and rule files of a folder; labels start with `prefix` (default: the path)."""
    if prefix is None:
        prefix = f"{policy_dir}/" if str(policy_dir) not in ("", ".") else ""
    model, problems = read_model_checked(policy_dir / MODEL_FILE, label=f"{prefix}{MODEL_FILE}")
    read = read_rule_files(rule_files(policy_dir), prefix=prefix)
    schema, schema_problems = _schema(policy_dir, prefix)
    return PolicyInput(
        model=model,
        rules=read.rules,
        findings=problems + read.findings + schema_problems,
        schema=schema,
    )


def _schema(policy_dir: Path, prefix: str) -> tuple[dict[str, list[str]] | None, list[Finding]]:
    try:
        return read_schema(policy_dir), []
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        return None, [Finding(f"{prefix}{SCHEMA_FILE}", 0, "PL009", str(exc))]


def read_loader_sources(loader: PolicyLoader) -> PolicyInput:
    """What `loader` would load, read for checking (file rules keep their lines)."""
    model, problems = read_model_checked(loader.policy_dir / MODEL_FILE, label=MODEL_FILE)
    schema, schema_problems = _schema(loader.policy_dir, "")
    out = PolicyInput(model=model, findings=problems + schema_problems, schema=schema)
    for source in loader.sources:
        if isinstance(source, FileRuleSource):
            read = read_rule_files(rule_files(source.policy_dir))
            out.rules.extend(read.rules)
            out.findings.extend(read.findings)
        elif model is not None:
            try:
                out.rules.extend(source.load_rules(model))
            except InvalidPolicy as exc:
                out.findings.extend(_source_failure(source.name, model, exc))
    return out


def _source_failure(name: str, model: ModelInfo, exc: InvalidPolicy) -> list[Finding]:
    """Findings for a source that refused to load (it names the first bad rule)."""
    rule = exc.details.get("rule")
    if isinstance(rule, list) and rule:
        bad = Rule(str(rule[0]), tuple(str(v) for v in rule[1:]), name)
        found = lint_rules(model, [bad])
        if found:
            return found
    return [Finding(name, 0, "PL004", exc.message)]


class LintedLoader(PolicyLoader):
    """A loader that refuses a policy with lint errors, so no load can make one live."""

    def read(self) -> tuple[ModelInfo, list[Rule]]:
        model, rules = super().read()
        errors = lint_errors(model, rules)
        if errors:
            raise InvalidPolicy(
                errors[0].text(), details={"findings": [f.as_dict() for f in errors]}
            )
        return model, rules
