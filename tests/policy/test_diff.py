"""`policy diff`: exactly the decisions that flip, from folders or from a git revision."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.policy.support import FIXTURES, REPO, run_cli

OLD, NEW = str(FIXTURES / "diff" / "old"), str(FIXTURES / "diff" / "new")

EXPECTED = [
    ("alice", "api:docs:locked", "write", "allow", "deny"),  # a new deny on the editor role
    ("bob", "api:docs", "write", "deny", "allow"),  # bob: viewer -> editor
    ("bob", "api:docs:*", "write", "deny", "allow"),
    ("editor", "api:docs:locked", "write", "allow", "deny"),
]


def test_text_output_lists_exactly_the_flips() -> None:
    result = run_cli("policy", "diff", OLD, NEW)
    assert result.exit_code == 0
    flips = [x for x in result.output.splitlines() if " -> " in x and ": " in x]
    assert flips == [
        "alice api:docs:locked write: allow -> deny (rule "
        "'p, editor, api:docs:locked, write, deny' tests/policy/fixtures/diff/new/policy.csv:4)",
        "bob api:docs write: deny -> allow "
        "(rule 'p, editor, api:docs, write, allow' tests/policy/fixtures/diff/new/policy.csv:2)",
        "bob api:docs:* write: deny -> allow "
        "(rule 'p, editor, api:docs:*, write, allow' tests/policy/fixtures/diff/new/policy.csv:3)",
        "editor api:docs:locked write: allow -> deny (rule "
        "'p, editor, api:docs:locked, write, deny' tests/policy/fixtures/diff/new/policy.csv:4)",
    ]
    assert "+ g, bob, editor  (tests/policy/fixtures/diff/new/policy.csv:7)" in result.output
    assert "- g, bob, viewer  (tests/policy/fixtures/diff/old/policy.csv:6)" in result.output
    assert result.output.splitlines()[-1].startswith("4 decisions changed")


def test_json_and_fail_on_change() -> None:
    result = run_cli("policy", "diff", OLD, NEW, "--format", "json", "--fail-on-change")
    assert result.exit_code == 2
    data = json.loads(result.output)
    assert data["count"] == 4 and data["changed"] is True
    got = [
        (f["subject"], f["resource"], f["action"], f["before"], f["after"]) for f in data["flips"]
    ]
    assert got == EXPECTED
    assert data["flips"][1]["after_rule"]["rule"] == ["editor", "api:docs", "write", "allow"]
    same = run_cli("policy", "diff", OLD, OLD, "--fail-on-change")
    assert same.exit_code == 0 and "0 decisions changed" in same.output


def test_removed_rule_reports_what_used_to_decide() -> None:
    result = run_cli("policy", "diff", NEW, OLD, "--format", "json")
    flip = next(f for f in json.loads(result.output)["flips"] if f["subject"] == "alice")
    assert (flip["before"], flip["after"]) == ("deny", "allow")
    assert flip["before_rule"]["rule"][-1] == "deny"


def test_domain_policies_compare_per_domain(tmp_path: Path) -> None:
    src = REPO / "policies/examples/rbac_with_domains"
    shutil.copytree(src, tmp_path / "new")
    with (tmp_path / "new" / "policy.csv").open("a") as f:
        f.write("g, bob, reader, tenant-a\n")
    data = json.loads(
        run_cli("policy", "diff", str(src), str(tmp_path / "new"), "--format", "json").output
    )
    assert {(f["subject"], f["resource"], f["action"], f["domain"]) for f in data["flips"]} == {
        ("bob", "api:ontologies:*", "read", "tenant-a"),
        ("bob", "api:ontologies:frozen", "read", "tenant-a"),
    }


def test_invalid_policy_is_refused(tmp_path: Path) -> None:
    result = run_cli("policy", "diff", OLD, str(FIXTURES / "lint" / "broken"))
    assert result.exit_code == 1 and "fails lint" in result.output


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_git_revision_against_working_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "diff" / "old", repo / "policies")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "policy")
    shutil.copy(FIXTURES / "diff" / "new" / "policy.csv", repo / "policies" / "policy.csv")
    result = run_cli("policy", "diff", "--git", "HEAD", "policies", "--format", "json", where=repo)
    assert result.exit_code == 0, result.output
    flips = json.loads(result.output)["flips"]
    assert [(f["subject"], f["resource"], f["action"], f["before"], f["after"]) for f in flips] == (
        EXPECTED
    )
    unknown = run_cli("policy", "diff", "--git", "no-such-rev", "policies", where=repo)
    assert unknown.exit_code == 1 and "no-such-rev" in unknown.output
