"""`policy push` / `policy pull`: make the database hold the files' rules, or the reverse.

push: the `casbin_rule` table becomes exactly the rules of the policy files, in one
transaction with the revision bump and an audit row (source "cli"). pull: one CSV file
becomes exactly the stored rules; rules it already has keep their line and comments, the
rest is appended. Both compute the difference first, so `--dry-run` shows what would change.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.administration.ports import PolicyStore
from app.policy.rules import DB_SOURCE, Rule, read_rule_lines


@dataclass
class RuleChanges:
    added: list[Rule] = field(default_factory=list)
    removed: list[Rule] = field(default_factory=list)
    revision: int | None = None  # set when the change was committed

    @property
    def empty(self) -> bool:
        return not self.added and not self.removed

    def lines(self) -> list[str]:
        out = [f"- {r.text()}" + (f"  ({r.source})" if r.source else "") for r in self.removed]
        return out + [f"+ {r.text()}" + (f"  ({r.source})" if r.source else "") for r in self.added]


def rule_changes(current: Sequence[Rule], target: Sequence[Rule]) -> RuleChanges:
    """What turns the rule set `current` into `target` (duplicates count once)."""
    have = {r.key for r in current}
    want = {r.key for r in target}
    added = list({r.key: r for r in target if r.key not in have}.values())
    removed = list({r.key: r for r in current if r.key not in want}.values())
    return RuleChanges(added, removed)


class _DryRun(Exception):
    """Rolls the transaction back after the difference was computed."""


async def push_rules(
    store: PolicyStore, rules: Sequence[Rule], *, actor: str, dry_run: bool
) -> RuleChanges:
    changes = RuleChanges()
    try:
        async with store.transaction() as tx:
            revision = await tx.bump_revision()  # serialise with API writers
            changes = rule_changes(await tx.read_rules(), rules)
            if dry_run or changes.empty:
                raise _DryRun
            for rule in changes.removed:
                await tx.delete_rule(rule)
            await tx.insert_rules([Rule(r.ptype, r.values, DB_SOURCE) for r in changes.added])
            await tx.record(
                actor=actor,
                action="policy.pushed",
                source="cli",
                target="casbin_rule",
                before={"removed": [r.text() for r in changes.removed]},
                after={"added": [r.text() for r in changes.added]},
                details={"revision": revision, "total": len({r.key for r in rules})},
            )
            changes.revision = revision
    except _DryRun:
        pass
    return changes


async def stored_rules(store: PolicyStore) -> list[Rule]:
    async with store.transaction() as tx:
        return await tx.read_rules()


def pull_into(path: Path, rules: Sequence[Rule], *, dry_run: bool) -> RuleChanges:
    """Rewrite `path` so its rules are exactly `rules`, keeping comments and order."""
    existing = list(read_rule_lines(path)) if path.is_file() else []
    current = [Rule(x.ptype, x.values, f"{x.path}:{x.line}") for x in existing]
    changes = rule_changes(current, rules)
    if dry_run or changes.empty:
        return changes
    removed_lines = {
        x.line for x in existing if (x.ptype, x.values) in {r.key for r in changes.removed}
    }
    text = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    kept = [line for number, line in enumerate(text, start=1) if number not in removed_lines]
    if changes.added:
        kept += ["", "# pulled from the database"] + [r.text() for r in changes.added]
    _write_atomically(path, "\n".join(kept).lstrip("\n") + "\n")
    return changes


def _write_atomically(path: Path, text: str) -> None:
    """Write next to the target and rename, so a watcher never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
