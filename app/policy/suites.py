"""Policy test suites: `*_test.yaml` files, validated and expanded into single checks.

A suite names the policy under test (`policy:`, a folder relative to the suite file; default:
the folder whose `tests/` holds the suite), optional fixtures (extra role assignments, named
subjects and resources with ABAC properties) and cases. A case is one check or a table: the
product of its subjects x resources x actions x domains, each expected to be allowed or denied.
See README "Writing and testing policies" for the format.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.policy.request import DecisionRequest, Entity
from app.policy.rules import split_policy_line

Effect = Literal["allow", "deny"]


class SuiteError(Exception):
    """A suite that cannot run; `line` points into the suite file (0 when unknown)."""

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


class EntitySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    type: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class FixturesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignments: list[list[str]] = Field(default_factory=list)  # [member, role(, domain)]
    subjects: dict[str, EntitySpec] = Field(default_factory=dict)
    resources: dict[str, EntitySpec] = Field(default_factory=dict)


Ref = str | EntitySpec
Expectation = Effect | dict[str, Effect]  # one effect, or action -> effect


class CaseSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    subject: Ref | None = None
    subjects: list[Ref] | None = None
    resource: Ref | None = None
    resources: list[Ref] | None = None
    action: str | None = None
    actions: list[str] | None = None
    domain: str | None = None
    domains: list[str] | None = None
    expect: Expectation | None = None
    table: dict[str, Expectation] | None = None  # subject -> expectation
    matched_rule: str | list[str] | None = None
    # Other request shapes: every value by position (`r = sub, act`), tokens by name, r2/p2/m2
    values: list[str | int | float | bool | dict[str, Any]] | None = None
    context: dict[str, Any] | None = None
    definition: str | None = Field(default=None, pattern=r"^r?[0-9]*$")

    @model_validator(mode="after")
    def _complete(self) -> CaseSpec:
        if self.values is not None:
            named = (self.subject, self.subjects, self.table, self.resource, self.resources)
            if any(x is not None for x in (*named, self.action, self.actions, self.domain)):
                raise ValueError("values carries the whole request: drop subject/resource/...")
            if not isinstance(self.expect, str):
                raise ValueError("with values, expect is allow or deny")
            return self
        if sum(x is not None for x in (self.subject, self.subjects, self.table)) != 1:
            raise ValueError("give exactly one of subject, subjects or table")
        if (self.resource is None) == (self.resources is None):
            raise ValueError("give exactly one of resource or resources")
        if self.action is not None and self.actions is not None:
            raise ValueError("give action or actions, not both")
        if self.domain is not None and self.domains is not None:
            raise ValueError("give domain or domains, not both")
        if self.table is None and self.expect is None:
            raise ValueError("expect is required (allow, deny, or action -> allow|deny)")
        if self.table is not None and self.expect is not None:
            raise ValueError("a table carries its own expectations; drop expect")
        return self


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str | None = None
    policy: str | None = None
    fixtures: FixturesSpec = Field(default_factory=FixturesSpec)
    cases: list[CaseSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Check:
    """One expanded request of a case, with what it must decide."""

    case: str
    line: int
    request: DecisionRequest
    expected: Effect
    matched_rule: tuple[str, ...] | None

    @property
    def label(self) -> str:
        r = self.request
        where = f" @r{r.definition.removeprefix('r')}" if r.definition else ""
        if r.values is not None:
            return " ".join(str(v) for v in r.values) + where
        dom = f" in {r.domain}" if r.domain is not None else ""
        return f"{r.subject.id} {r.resource.id} {r.action.id}{dom}{where}"


@dataclass
class Suite:
    path: Path
    name: str
    policy_dir: Path
    spec: SuiteSpec
    case_lines: list[int]

    def checks(self) -> Iterator[Check]:
        for case, line in zip(self.spec.cases, self.case_lines, strict=True):
            yield from _expand(case, line, self.spec.fixtures)


def _entity(ref: Ref, named: dict[str, EntitySpec], kind: str) -> Entity:
    spec = named.get(ref) if isinstance(ref, str) else ref
    if spec is None:
        return Entity(str(ref), kind=kind)
    default_id = ref if isinstance(ref, str) else None
    entity_id = spec.id or default_id
    if entity_id is None:
        raise SuiteError(f"a {kind} needs an id (fixtures.{kind}s entries default to their key)")
    return Entity.typed(spec.type, entity_id, spec.properties, kind=kind)


def _expand(case: CaseSpec, line: int, fixtures: FixturesSpec) -> Iterator[Check]:
    rows: list[tuple[Ref, Expectation]]
    if case.values is not None:
        request = DecisionRequest.positional(case.values, definition=case.definition)
        yield Check(case.name, line, request, case.expect, _rule_tuple(case.matched_rule))  # type: ignore[arg-type]
        return
    if case.table is not None:
        rows = list(case.table.items())
    else:
        subjects = case.subjects if case.subjects is not None else [case.subject]
        rows = [(s, case.expect) for s in subjects if s is not None]  # type: ignore[misc]
    resources = case.resources if case.resources is not None else [case.resource]
    domains: list[str | None] = list(case.domains) if case.domains else [case.domain]
    rule = _rule_tuple(case.matched_rule)
    for subject_ref, expectation in rows:
        if isinstance(expectation, dict):
            pairs = list(expectation.items())
        else:
            actions = case.actions if case.actions is not None else [case.action]
            if actions == [None]:
                raise SuiteError(f"case {case.name!r}: action or actions is required", line=line)
            pairs = [(str(a), expectation) for a in actions]
        subject = _entity(subject_ref, fixtures.subjects, "subject")
        for resource_ref, domain, (action, effect) in itertools.product(resources, domains, pairs):
            resource = _entity(resource_ref, fixtures.resources, "resource")  # type: ignore[arg-type]
            request = DecisionRequest(
                subject,
                resource,
                Entity(action, kind="action"),
                domain,
                context=case.context,
                definition=case.definition,
            )
            yield Check(case.name, line, request, effect, rule)


def _rule_tuple(value: str | list[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(split_policy_line(value))
    return tuple(str(v).strip() for v in value)


def _is_union_tag(part: str) -> bool:
    """Pydantic names union members in error locations (`literal['allow','deny']`)."""
    return any(c in part for c in "[](") or part in ("str", "EntitySpec", "dict")


def _case_lines(text: str) -> list[int]:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "cases" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def load_suite(path: Path, *, default_policy: Path) -> Suite:
    """Read and validate one suite file; `SuiteError` says what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        lines = _case_lines(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise SuiteError(f"not valid YAML: {exc}", line=line) from None
    try:
        spec = SuiteSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"] if not _is_union_tag(str(p))]
        line = lines[int(loc[1])] if loc[:1] == ["cases"] and len(loc) > 1 and lines else 0
        raise SuiteError(f"{'.'.join(loc) or 'suite'}: {err['msg']}", line=line) from None
    policy = (path.parent / spec.policy).resolve() if spec.policy else default_policy
    return Suite(
        path=path,
        name=spec.name or path.stem.removesuffix("_test"),
        policy_dir=policy,
        spec=spec,
        case_lines=lines or [0] * len(spec.cases),
    )


def find_suites(policy_dir: Path) -> list[Path]:
    return sorted(p for p in (policy_dir / "tests").glob("*_test.yaml") if p.is_file())
