"""`policy test`: run suites against the policies they name and report like `opa test`.

Each suite's policy is linted first (as Cerbos' `compile` does): a policy with lint errors
fails its suites without running them. Every expanded check is decided with `explain`, so a
failure shows the rule and role path that produced the wrong answer, and the run records
which rules decided something (coverage).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.errors import AuthzError, RequestInvalid
from app.policy.decision import Decision
from app.policy.entities import ENTITY_FILE, policy_entities
from app.policy.request import DecisionRequest
from app.policy.rules import Rule
from app.policy.snapshot import PolicySnapshot
from app.policy.suites import Check, Suite, SuiteError, load_suite
from app.policy.workspace import read_policy_dir


@dataclass(frozen=True)
class CheckResult:
    check: Check
    actual: str  # "allow", "deny" or "error"
    trace: str
    failure: str | None  # None when the check passed
    seconds: float
    rule: Rule | None = None
    role_path: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.failure is None

    @property
    def name(self) -> str:
        return f"{self.check.case} [{self.check.label}]"


@dataclass
class SuiteResult:
    name: str
    file: str
    results: list[CheckResult] = field(default_factory=list)
    error: str | None = None  # the suite could not run at all
    error_line: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]


@dataclass
class Coverage:
    """Which rules of one policy decided (or at least matched) a check; which roles were used.

    A rule can match without ever deciding: a deny that an inherited deny already covers.
    """

    snapshot: PolicySnapshot
    decided: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    roles_used: set[str] = field(default_factory=set)
    requests: list[DecisionRequest] = field(default_factory=list)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.snapshot.rules

    def undecided(self) -> list[Rule]:
        return [r for r in self.rules if r.ptype.startswith("p") and r.key not in self.decided]

    def unmatched(self) -> list[Rule]:
        """Rules that no check's request matches at all (judged one rule at a time)."""
        roles = [r for r in self.rules if r.ptype.startswith("g")]
        out = []
        for rule in self.undecided():
            alone = PolicySnapshot.build(self.snapshot.model, [rule, *roles], revision=0)
            if not any(_matches(alone, request) for request in self.requests):
                out.append(rule)
        return out

    def roles(self) -> set[str]:
        return {r.values[1] for r in self.rules if r.ptype == "g"}


@dataclass
class RunResult:
    suites: list[SuiteResult]
    coverage: dict[Path, Coverage]

    @property
    def passed(self) -> int:
        return sum(len(s.results) - len(s.failed) for s in self.suites)

    @property
    def failed(self) -> int:
        return sum(len(s.failed) for s in self.suites)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.suites if s.error)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.errors == 0 and self.passed > 0

    def summary(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed"
        return text + (f", {self.errors} suite errors" if self.errors else "")


def _matches(snapshot: PolicySnapshot, request: DecisionRequest) -> bool:
    try:
        return snapshot.decide(request, explain=True).rule is not None
    except AuthzError:
        return False


def trace(decision: Decision) -> str:
    if decision.rule is None:
        return "no rule matched (default deny)"
    text = f"rule '{decision.rule.text()}' ({decision.rule.source or 'rule'})"
    if len(decision.role_path) > 1:
        text += " via " + " -> ".join(decision.role_path)
    return text


def _judge(check: Check, snapshot: PolicySnapshot) -> CheckResult:
    started = time.perf_counter()
    try:
        decision = snapshot.decide(check.request, explain=True)
    except AuthzError as exc:
        return CheckResult(
            check,
            "error",
            exc.message,
            f"expected {check.expected}, got an error",
            time.perf_counter() - started,
        )
    actual = decision.effect
    failure = None if actual == check.expected else f"expected {check.expected}, got {actual}"
    if failure is None and check.matched_rule is not None:
        got = (decision.rule.ptype, *decision.rule.values) if decision.rule else ()
        want = check.matched_rule
        if want[:1] != ("p",) and got[:1] == ("p",):
            got = got[1:]
        if tuple(want) != tuple(got):
            failure = f"expected rule '{', '.join(want)}', matched '{', '.join(got) or 'none'}'"
    return CheckResult(
        check,
        actual,
        trace(decision),
        failure,
        time.perf_counter() - started,
        decision.rule,
        decision.role_path,
    )


class _Policies:
    """Policies under test, read and linted once each."""

    def __init__(self, display: Callable[[Path], str]) -> None:
        self.display = display
        self.cache: dict[Path, tuple[PolicySnapshot | None, str | None]] = {}
        self.coverage: dict[Path, Coverage] = {}

    def get(self, suite: Suite) -> PolicySnapshot:
        if suite.policy_dir not in self.cache:
            self.cache[suite.policy_dir] = self._load(suite.policy_dir)
        snapshot, error = self.cache[suite.policy_dir]
        if snapshot is None:
            raise SuiteError(error or "policy cannot be loaded")
        extra = _fixture_rules(suite, snapshot)
        if not extra:
            return snapshot
        return PolicySnapshot.build(
            snapshot.model,
            [*snapshot.source_rules, *extra],
            revision=0,
            entities=snapshot.entities,
        )

    def _load(self, policy_dir: Path) -> tuple[PolicySnapshot | None, str | None]:
        name = self.display(policy_dir)
        policy = read_policy_dir(policy_dir, prefix=f"{name}/")
        errors = policy.lint().errors
        if policy.model is None or errors:
            first = errors[0].text() if errors else "model missing"
            return None, f"policy {name} fails lint ({len(errors)} errors): {first}"
        try:
            entities = policy_entities(policy_dir)
        except (OSError, ValueError, yaml.YAMLError, RequestInvalid) as exc:
            return None, f"policy {name}: {ENTITY_FILE}: {exc}"
        snapshot = PolicySnapshot.build(policy.model, policy.rules, revision=0, entities=entities)
        self.coverage[policy_dir] = Coverage(snapshot)
        return snapshot, None


def _fixture_rules(suite: Suite, snapshot: PolicySnapshot) -> list[Rule]:
    arity = snapshot.model.arity("g") if "g" in snapshot.model.role_arity else None
    width = snapshot.model.role_arity.get("g", 0)
    extra = (", domain" if width > 2 else "") + (
        ", start, end" if "g" in snapshot.model.role_params else ""
    )
    rules = []
    for i, values in enumerate(suite.spec.fixtures.assignments):
        if arity is None or len(values) != arity:
            raise SuiteError(
                f"fixtures.assignments.{i}: the model's g needs {arity} values "
                f"(member, role{extra}), got {len(values)}"
            )
        rules.append(Rule("g", tuple(values), f"{suite.path.name}:fixtures"))
    return rules


def run_suites(
    paths: Sequence[Path],
    *,
    default_policy: Path,
    name_filter: re.Pattern[str] | None = None,
    display: Callable[[Path], str] = str,
) -> RunResult:
    policies = _Policies(display)
    results = []
    for path in paths:
        started = time.perf_counter()
        result = SuiteResult(name=path.stem, file=display(path))
        try:
            suite = load_suite(path, default_policy=default_policy)
            result.name = suite.name
            snapshot = policies.get(suite)
            coverage = policies.coverage.get(suite.policy_dir)
            for check in suite.checks():
                if name_filter and not name_filter.search(f"{suite.name}/{check.case}"):
                    continue
                outcome = _judge(check, snapshot)
                result.results.append(outcome)
                if coverage is not None:
                    coverage.requests.append(check.request)
                    coverage.roles_used.add(check.request.subject.id)
                    if outcome.rule is not None:
                        coverage.decided.add(outcome.rule.key)
                        coverage.roles_used.update(outcome.role_path)
        except SuiteError as exc:
            result.error, result.error_line = str(exc), exc.line
        result.seconds = time.perf_counter() - started
        results.append(result)
    return RunResult(results, policies.coverage)
