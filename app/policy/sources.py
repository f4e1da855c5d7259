"""Where the model and rules come from: the policy folder, the database, or both.

`RuleSource` is the small interface storage adapters implement (the database one lives in
`app.store.policy_rules`, next to the SQL it needs). Sources are read in a worker thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from app.errors import InvalidPolicy
from app.policy.model import ModelInfo, parse_model
from app.policy.rules import Rule, load_rule_files

MODEL_FILE = "model.conf"


class RuleSource(Protocol):
    name: str

    def load_rules(self, model: ModelInfo) -> list[Rule]:
        """Every rule of this source, validated against `model` (raise `InvalidPolicy`)."""
        ...


def read_model(policy_dir: Path) -> ModelInfo:
    path = policy_dir / MODEL_FILE
    if not path.is_file():
        raise InvalidPolicy(
            f"{path}: model file not found", details={"file": str(path), "reason": "missing"}
        )
    return parse_model(path.read_text(encoding="utf-8"), source=MODEL_FILE)


def rule_files(policy_dir: Path) -> list[Path]:
    """`*.csv` directly in the policy folder, in name order (examples/ and tests/ excluded)."""
    return sorted(p for p in policy_dir.glob("*.csv") if p.is_file())


class FileRuleSource:
    name = "files"

    def __init__(self, policy_dir: Path) -> None:
        self.policy_dir = policy_dir

    def load_rules(self, model: ModelInfo) -> list[Rule]:
        return load_rule_files(rule_files(self.policy_dir), model)


class PolicyLoader:
    """Reads the model and every configured rule source into (model, rules)."""

    def __init__(self, policy_dir: Path, sources: list[RuleSource]) -> None:
        self.policy_dir = policy_dir
        self.sources = sources

    def read(self) -> tuple[ModelInfo, list[Rule]]:
        model = read_model(self.policy_dir)
        rules: list[Rule] = []
        for source in self.sources:
            rules.extend(source.load_rules(model))
        return model, rules

    @property
    def description(self) -> str:
        return "+".join(s.name for s in self.sources)
