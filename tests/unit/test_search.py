"""Search agrees with evaluation: the indexed backward walk finds exactly what checking
every subject finds, on the shipped policy and on a Casbin-benchmark-shaped one."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.policy.request import DecisionRequest, Entity
from app.policy.search import search_resources, search_subjects
from app.policy.snapshot import PolicySnapshot
from bench.policies import SIZES, write_policy
from bench.search import run_search
from tests.support.policies import SHIPPED, snapshot_of


def _everyone(snapshot: PolicySnapshot, resource: str, action: str) -> list[dict[str, str]]:
    users, _roles = snapshot.subject_sets
    return sorted(
        (
            {"type": "user" if ":" not in u else u.split(":")[0], "id": u}
            for u in users
            if snapshot.decide(DecisionRequest.of(u, resource, action)).allowed
        ),
        key=lambda r: (r["type"], r["id"]),
    )


@pytest.mark.parametrize(
    "resource",
    ["api:schemas", "api:branches:main", "api:branches:dev", "api:policies", "api:audit", "x"],
)
@pytest.mark.parametrize("action", ["read", "write", "delete"])
def test_indexed_subject_search_equals_checking_everyone(resource: str, action: str) -> None:
    snapshot = snapshot_of(SHIPPED)
    assert snapshot.indexed is not None
    page = search_subjects(
        snapshot,
        subject_type=None,
        resource=Entity(resource, kind="resource"),
        action=Entity(action, kind="action"),
        limit=1000,
    )
    assert page.results == _everyone(snapshot, resource, action)


def test_bench_policy_search_and_its_bench_row(tmp_path: Path) -> None:
    folder = write_policy(tmp_path / "small", SIZES[0])
    snapshot = snapshot_of(folder)
    resource = "data-has-a-very-long-name-3"
    page = search_subjects(
        snapshot,
        subject_type="user",
        resource=Entity(resource, kind="resource"),
        action=Entity("read", kind="action"),
        limit=1000,
    )
    assert page.results == _everyone(snapshot, resource, "read") and len(page.results) == 100
    mine = search_resources(
        snapshot,
        subject=Entity("user-has-a-very-long-name-35", kind="subject"),
        action=Entity("read", kind="action"),
        resource_type=None,
        limit=1000,
    )
    assert mine.results == [{"type": "user", "id": "data-has-a-very-long-name-0"}]
    rows = run_search(folder, SIZES[0], budget=0.05)
    assert [(r.kind, r.results) for r in rows] == [("subject", 100), ("resource", 1)]
