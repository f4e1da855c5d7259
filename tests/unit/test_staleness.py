"""Which subjects a policy change cuts off (pure snapshot comparison)."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.tokens.staleness import affected_subjects
from tests.support.policies import SHIPPED, snapshot_of


def _variant(tmp_path: Path, name: str, edit: str, replace: str = "") -> Path:
    target = tmp_path / name
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns("examples", "tests"))
    csv = target / "policy.csv"
    text = csv.read_text()
    csv.write_text(text.replace(edit, replace) if replace or edit in text else text + edit)
    return target


def test_no_change_affects_nobody() -> None:
    assert affected_subjects(snapshot_of(SHIPPED), snapshot_of(SHIPPED, revision=2)) == set()


def test_role_membership_change(tmp_path: Path) -> None:
    new = snapshot_of(_variant(tmp_path, "p", "g, bob, viewer\n", "g, bob, auditor\n"))
    assert affected_subjects(snapshot_of(SHIPPED), new) == {"bob"}


def test_permission_removed_reaches_inheriting_roles(tmp_path: Path) -> None:
    new = snapshot_of(_variant(tmp_path, "p", "p, viewer, api:schemas, read, allow\n", "\n"))
    affected = affected_subjects(snapshot_of(SHIPPED), new)
    assert {
        "bob",
        "alice",
        "carol",
        "viewer",
        "developer",
        "admin",
        "client:ci-pipeline",
    } <= affected
    assert "dave" not in affected and "auditor" not in affected


def test_deny_added_narrows_but_allow_added_does_not(tmp_path: Path) -> None:
    old = snapshot_of(SHIPPED)
    deny = snapshot_of(_variant(tmp_path, "d", "p, auditor, api:audit, read, deny\n"))
    assert affected_subjects(old, deny) == {"dave", "auditor"}
    allow = snapshot_of(_variant(tmp_path, "a", "p, auditor, api:reports, read, allow\n"))
    assert affected_subjects(old, allow) == set()
