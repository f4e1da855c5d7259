"""A replaced snapshot is freed by reference counting alone.

A server with `OMS_AUTH_GC_FREEZE=true` freezes long-lived objects after each load
(`gc.freeze()`), which keeps the cyclic collector from rescanning the policy; that is only
safe if a snapshot, once dropped, leaves no reference cycles behind for the collector to find.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from app.policy.request import DecisionRequest, Entity
from tests.support.policies import EXAMPLES, SHIPPED, snapshot_of


@pytest.mark.parametrize("folder", [SHIPPED, EXAMPLES / "abac", EXAMPLES / "rbac_with_domains"])
def test_a_used_snapshot_leaves_no_cyclic_garbage(folder: Path) -> None:
    # Objects from before this test (other tests' engines, pending garbage) are set aside:
    # only what this test builds is judged.
    gc.collect()
    gc.freeze()
    try:
        _judge_snapshot_garbage(folder)
    finally:
        gc.unfreeze()


def _judge_snapshot_garbage(folder: Path) -> None:
    snapshot = snapshot_of(folder)
    domain = "tenant-a" if snapshot.model.has_domain else None
    for subject in ("alice", "bob", "nobody"):
        request = DecisionRequest.of(subject, "api:ontologies:x", "write", domain)
        snapshot.decide(request, explain=True)
        snapshot.decide_generic(request, explain=True)
        snapshot.permissions_for(subject, domain)
        snapshot.allowed_scopes(subject, domain)
    if folder.name == "abac":
        owner = Entity("doc:1", "document", {"owner": "alice"}, kind="resource")
        snapshot.decide(DecisionRequest(Entity("alice"), owner, Entity("read")), explain=True)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        freed = weakref.ref(snapshot)
        del snapshot
        assert freed() is None  # reference counting alone freed it
        gc.collect()
        # Other threads of the test process may leave garbage of their own meanwhile; none
        # of it may be the snapshot's.
        ours = [o for o in gc.garbage if type(o).__module__.startswith("app.")]
        assert ours == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
