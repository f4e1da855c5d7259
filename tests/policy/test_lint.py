"""`policy lint`: every code fires at the line it should, with the right severity and exit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.policy.findings import CODES
from app.policy.patterns import FUNCTIONS
from app.policy.workspace import read_policy_dir
from tests.policy.support import FIXTURES, REPO, run_cli

LINT = FIXTURES / "lint"


def found(policy: Path) -> set[tuple[str, int, str]]:
    report = read_policy_dir(policy, prefix="").lint()
    return {(f.file, f.line, f.code) for f in report.findings}


def test_broken_rbac_fixture_reports_each_code_at_its_line() -> None:
    assert found(LINT / "broken") == {
        ("policy.csv", 3, "PL003"),  # arity
        ("policy.csv", 4, "PL002"),  # ptype q
        ("policy.csv", 5, "PL004"),  # value starting with '#'
        ("policy.csv", 6, "PL005"),  # effect "permit"
        ("policy.csv", 9, "PL006"),  # the assignment that closes role-a -> b -> c -> a
        ("policy.csv", 10, "PL008"),  # api:*:public under keyMatch
        ("policy.csv", 11, "PL101"),  # duplicate of line 2
        ("policy.csv", 12, "PL102"),  # role "develper"
        ("policy.csv", 13, "PL103"),  # allow under the editor's api:branches:* deny
    }


def test_regex_fixture_reports_pattern_problems() -> None:
    assert found(LINT / "regex") == {
        ("policy.csv", 2, "PL007"),  # ^api:x**$ does not compile
        ("policy.csv", 3, "PL104"),  # text after the $ anchor
        ("policy.csv", 4, "PL105"),  # '*' action under r.act == p.act
    }


def test_bad_model_points_at_the_matcher_line() -> None:
    report = read_policy_dir(LINT / "bad_model", prefix="").lint()
    assert [(f.file, f.line, f.code) for f in report.findings] == [("model.conf", 14, "PL001")]
    assert "p.owner" in report.findings[0].message


def test_missing_model_and_unreadable_file(tmp_path: Path) -> None:
    assert found(tmp_path) == {("model.conf", 0, "PL001")}
    shutil.copy(REPO / "policies" / "model.conf", tmp_path)
    (tmp_path / "policy.csv").write_bytes(b"p, alice, api:\xff\xfe, read, allow\n")
    assert found(tmp_path) == {("policy.csv", 0, "PL009")}


def test_cycle_message_names_the_chain_and_self_loop(tmp_path: Path) -> None:
    shutil.copy(REPO / "policies" / "model.conf", tmp_path)
    (tmp_path / "policy.csv").write_text(
        "p, a, x, read, allow\ng, a, b\ng, b, a\ng, c, c\np, c, x, read, allow\n"
    )
    report = read_policy_dir(tmp_path, prefix="").lint()
    cycles = sorted((f.line, f.message) for f in report.findings if f.code == "PL006")
    assert cycles == [(3, "role cycle: b -> a -> b"), (4, "role cycle: c -> c")]


def test_domain_roles_are_checked_per_domain(tmp_path: Path) -> None:
    shutil.copytree(REPO / "policies/examples/rbac_with_domains", tmp_path, dirs_exist_ok=True)
    with (tmp_path / "policy.csv").open("a") as f:
        f.write("g, zoe, editor, tenant-c\n")  # line 10: editor grants nothing in tenant-c
        f.write("p, editor, tenant-a, api:ontologies:geo, write, allow\n")  # line 11: not dead
        f.write("p, reader, tenant-a, api:ontologies:*, write, deny\n")  # line 12
    codes = found(tmp_path)
    # the tenant-a editor inherits reader, whose deny now covers every editor write there
    assert ("policy.csv", 10, "PL102") in codes
    assert ("policy.csv", 1, "PL103") in codes and ("policy.csv", 11, "PL103") in codes
    assert ("policy.csv", 2, "PL103") not in codes  # tenant-b is another domain


@pytest.mark.parametrize(
    "policy", ["policies", "policies/examples/abac", "policies/examples/rbac_with_domains"]
)
def test_shipped_policies_are_clean(policy: str) -> None:
    assert read_policy_dir(REPO / policy).lint().findings == []


def test_cli_exit_codes_strict_and_json() -> None:
    broken = str(LINT / "broken")
    result = run_cli("policy", "lint", broken)
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if ": PL006 " in x)
    assert line.endswith("PL006 error: role cycle: role-c -> role-a -> role-b -> role-c")
    assert line.startswith("tests/policy/fixtures/lint/broken/policy.csv:9: ")
    assert "6 errors, 3 warnings" in result.output

    clean = run_cli("policy", "lint", "policies")
    assert clean.exit_code == 0 and "policies: 0 errors, 0 warnings" in clean.output

    data = json.loads(run_cli("policy", "lint", broken, "--format", "json").output)
    assert data["ok"] is False
    entry = data["policies"][0]
    assert entry["errors"] == 6 and entry["warnings"] == 3
    assert {f["code"] for f in entry["findings"]} == {
        "PL002", "PL003", "PL004", "PL005", "PL006", "PL008", "PL101", "PL102", "PL103"
    }  # fmt: skip
    assert all(f["severity"] == CODES[f["code"]][0] for f in entry["findings"])


def test_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    shutil.copy(REPO / "policies" / "model.conf", tmp_path)
    (tmp_path / "policy.csv").write_text("p, viewer, api:x, read, allow\ng, bob, viewr\n")
    assert run_cli("policy", "lint", str(tmp_path)).exit_code == 0
    strict = run_cli("policy", "lint", "--strict", str(tmp_path))
    assert strict.exit_code == 1 and "PL102 warning" in strict.output


def test_codes_are_listed() -> None:
    result = run_cli("policy", "lint", "--codes")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == list(CODES)


@pytest.mark.parametrize(
    ("function", "broad", "narrow", "covers"),
    [
        ("keyMatch", "api:*", "api:branches:*", True),
        ("keyMatch", "api:branches:*", "api:*", False),
        ("keyMatch", "api:branches:*", "api:branches:main", True),
        ("keyMatch", "api:branches:main", "api:branches:*", False),
        ("keyMatch", "*", "anything", True),
        ("==|*", "*", "read", True),
        ("==|*", "read", "*", False),
        ("==", "read", "read", True),
        ("keyMatch2", "/api/*", "/api/users", True),
        ("keyMatch2", "/api/:id", "/api/users/1", False),
        ("regexMatch", "^api:.*$", "^api:x$", True),
        ("regexMatch", "^api:x$", "^api:.*$", False),
    ],
)
def test_pattern_coverage_is_sound(function: str, broad: str, narrow: str, covers: bool) -> None:
    assert FUNCTIONS[function].covers(broad, narrow) is covers


def test_star_branch_elsewhere_in_the_matcher_is_a_wildcard_not_pl105(tmp_path: Path) -> None:
    """`r.obj == p.obj` in one branch and `p.obj == "*"` in another: `*` rules are meant."""
    (tmp_path / "model.conf").write_text(
        "[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n"
        "[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\n"
        "m = (r.sub == p.sub && r.obj == p.obj && r.act == p.act) || "
        '(r.sub == p.sub && p.obj == "*" && r.act == p.act)\n'
    )
    (tmp_path / "policy.csv").write_text("p, alice, *, read\np, bob, doc:1, read\n")
    assert found(tmp_path) == set()
    # Without the `*` branch the same rule is pattern syntax under `==`: still reported.
    model = (tmp_path / "model.conf").read_text().splitlines()
    model[-1] = "m = (r.sub == p.sub && r.obj == p.obj) || (r.sub == p.sub && r.act == p.act)"
    (tmp_path / "model.conf").write_text("\n".join(model) + "\n")
    assert found(tmp_path) == {("policy.csv", 1, "PL105")}


def _abac_copy(tmp_path: Path) -> Path:
    target = tmp_path / "abac"
    shutil.copytree(REPO / "policies" / "examples" / "abac", target)
    return target


def test_pl107_a_branch_reading_properties_without_the_type(tmp_path: Path) -> None:
    policy = _abac_copy(tmp_path)
    assert found(policy) == set()
    model = (policy / "model.conf").read_text()
    (policy / "model.conf").write_text(model.replace('r.obj.type == "doc" && ', "", 1))
    report = read_policy_dir(policy, prefix="").lint()
    assert [(f.code, f.line) for f in report.findings] == [("PL107", 21)]
    assert "branch 1 reads r.obj" in report.findings[0].message


def test_pl108_a_property_no_schema_guarantees(tmp_path: Path) -> None:
    policy = _abac_copy(tmp_path)
    (policy / "schema.yaml").write_text("user: [department]\ndocument: [department]\n")
    report = read_policy_dir(policy, prefix="").lint()
    assert [(f.code, f.message.split(" ")[0]) for f in report.findings] == [
        ("PL108", "r.obj.owner")
    ]
    (policy / "schema.yaml").unlink()
    codes = sorted(
        f.message.split(" ")[0] for f in read_policy_dir(policy, prefix="").lint().findings
    )
    assert codes == ["r.obj.department", "r.obj.owner", "r.sub.department"]
    (policy / "schema.yaml").write_text("- not a mapping\n")
    assert ("schema.yaml", 0, "PL009") in found(policy)


def test_shipped_rbac_model_scopes_types_by_key_and_is_not_warned() -> None:
    report = read_policy_dir(REPO / "policies", prefix="").lint()
    assert not [f for f in report.findings if f.code in ("PL107", "PL108")]
