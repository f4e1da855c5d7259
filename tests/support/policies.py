"""Build policy snapshots straight from a folder (no database, no app)."""

from __future__ import annotations

from pathlib import Path

from app.policy.snapshot import PolicySnapshot
from app.policy.sources import FileRuleSource, PolicyLoader

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "policies"
EXAMPLES = SHIPPED / "examples"


def snapshot_of(policy_dir: Path, *, revision: int = 1) -> PolicySnapshot:
    model, rules = PolicyLoader(policy_dir, [FileRuleSource(policy_dir)]).read()
    return PolicySnapshot.build(model, rules, revision=revision)
