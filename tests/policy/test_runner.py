"""`policy test`: fixture suites pass and fail as they should, JUnit XML is well-formed, and the
shipped suites cover every role and every deny rule of the shipped policy."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from app.policy.suites import find_suites
from app.policy.testing import run_suites
from tests.policy.support import FIXTURES, REPO, run_cli

SUITES = FIXTURES / "suites"


def test_passing_suite_exits_zero() -> None:
    result = run_cli("policy", "test", str(SUITES / "passing"), "-v")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "8 passed, 0 failed"
    assert "PASS green / locked docs are denied [alice api:docs:locked write]: deny" in (
        result.output
    )


def test_failing_suites_report_file_case_expectation_and_trace(tmp_path: Path) -> None:
    report = tmp_path / "reports" / "policy.xml"
    result = run_cli("policy", "test", str(SUITES / "failing"), "--junit-xml", str(report))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    red = "tests/policy/fixtures/suites/failing/tests/red_test.yaml"
    assert (
        f"{red}:9: FAIL red / viewers write docs [bob api:docs write]: expected allow, got deny; "
        "no rule matched (default deny)"
    ) in lines
    wrong_rule = next(x for x in lines if x.startswith(f"{red}:14: FAIL"))
    assert "expected rule 'editor, api:docs, write, allow'" in wrong_rule
    assert "matched 'editor, api:docs:*, write, allow'" in wrong_rule
    assert "via alice -> editor" in wrong_rule
    schema = "tests/policy/fixtures/suites/failing/tests/schema_test.yaml"
    assert f"{schema}:9: ERROR schema_test: cases.1.expect: Input should be 'allow' or 'deny'" in (
        lines
    )
    assert any("ERROR broken-policy: policy" in x and "PL003" in x for x in lines)
    assert lines[-1] == "1 passed, 2 failed, 2 suite errors"

    root = ET.parse(report).getroot()  # noqa: S314  (our own output)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "2", "2")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"red", "schema_test", "broken-policy"}
    cases = suites["red"].findall("testcase")
    assert [c.get("name") for c in cases] == [
        "passes [alice api:docs read]",
        "viewers write docs [bob api:docs write]",
        "wrong rule named [alice api:docs:guide write]",
    ]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "expected allow, got deny"
    assert cases[1].get("line") == "9"
    error = suites["schema_test"].find("testcase/error")
    assert error is not None and "expect" in (error.get("message") or "")


def test_filter_selects_cases_by_suite_and_name() -> None:
    result = run_cli("policy", "test", str(SUITES / "failing"), "--filter", "^red/passes$")
    assert result.output.splitlines()[-1] == "1 passed, 0 failed, 2 suite errors"
    none = run_cli("policy", "test", str(SUITES / "passing"), "--filter", "no such case")
    assert none.exit_code == 1 and "no test case matched" in none.output
    bad = run_cli("policy", "test", str(SUITES / "passing"), "--filter", "(")
    assert bad.exit_code == 2


def test_missing_suites_fail(tmp_path: Path) -> None:
    result = run_cli("policy", "test", str(tmp_path))
    assert result.exit_code == 1 and "no test suites" in result.output


def test_shipped_suites_pass_and_cover_every_role_and_deny_rule() -> None:
    policies = REPO / "policies"
    run = run_suites(find_suites(policies), default_policy=policies)
    assert run.ok, [r.failure for s in run.suites for r in s.failed] + [
        s.error for s in run.suites if s.error
    ]
    assert {s.name for s in run.suites} == {
        "shipped-rbac",
        "abac-documents",
        "rbac-with-domains",
        "authzen-todo-1.0",
        "authzen-api-gateway",
    }
    shipped = run.coverage[policies]
    assert shipped.roles() == {"viewer", "developer", "admin", "auditor"}
    assert shipped.roles() <= shipped.roles_used
    denies = [r for r in shipped.rules if r.ptype == "p" and r.values[-1] == "deny"]
    assert len(denies) == 4
    unmatched = shipped.unmatched()
    assert not [d for d in denies if d in unmatched]
    assert unmatched == []  # every rule of the shipped policy is exercised by some case
    for policy in ("examples/abac", "examples/rbac_with_domains", "examples/authzen-todo"):
        cov = run.coverage[(policies / policy).resolve()]
        assert cov.undecided() == [] and cov.roles() <= cov.roles_used


def test_make_target_runs_the_shipped_suites() -> None:
    result = run_cli("policy", "test", "policies", "--coverage")
    assert result.exit_code == 0, result.output
    assert "matched, never decisive: p, admin, api:branches:main, delete, deny" in result.output


def test_suites_take_any_request_shape(tmp_path: Path) -> None:
    """Positional `values`, `definition` (r2/p2/m2) and named fields in one suite."""
    result = run_cli("policy", "test", str(SUITES / "shapes"), "-v")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "4 passed, 0 failed"
    assert "PASS shapes / r2 by position [ben restart @r2]: allow" in result.output
    text = (SUITES / "shapes" / "tests" / "shapes_test.yaml").read_text()
    policy = (REPO / "policies" / "fidelity" / "enforce_context").resolve()
    text = text.replace("../../../../../../policies/fidelity/enforce_context", str(policy))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "shapes_test.yaml").write_text(
        text.replace("values: [ben, restart]", "values: [ben, restart, extra]")
    )
    broken = run_cli("policy", "test", str(tmp_path))
    assert broken.exit_code == 1
    assert "r2 takes 2 values (sub, act), got 3" in broken.output
