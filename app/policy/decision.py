"""The answer to a decision request, with what is needed to explain it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from app.policy.request import DecisionRequest
from app.policy.rules import Rule

Effect = Literal["allow", "deny"]
Reason = Literal["matched", "no_match"]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    revision: int
    evaluator: str  # which evaluation path decided: "generic" (Casbin) or "indexed"
    rule: Rule | None = None  # the rule that decided; None when nothing matched
    role_path: tuple[str, ...] = ()  # subject -> ... -> the rule's subject
    # properties a rule read that neither the request nor the entity store gave: each such
    # rule did not match (never an error), and `explain` says which were missing
    missing: tuple[str, ...] = ()
    definition: str = ""  # which request/policy/matcher set decided: "" (r/p/m) or "2" (r2/...)

    @property
    def effect(self) -> Effect:
        return "allow" if self.allowed else "deny"

    @property
    def reason(self) -> Reason:
        return "matched" if self.rule is not None else "no_match"

    def explain(self) -> dict[str, Any]:
        return {
            "effect": self.effect,
            "reason": self.reason,
            "matched_rule": self.rule.as_dict() if self.rule else None,
            "role_path": list(self.role_path),
            "evaluator": self.evaluator,
            "missing_properties": list(self.missing),
            "definition": {
                "request": f"r{self.definition}",
                "policy": f"p{self.definition}",
                "matcher": f"m{self.definition}",
            },
        }


class DecisionPlan(NamedTuple):
    """How one snapshot answers one request (`PolicySnapshot.plan`): which evaluator, and
    whether the decision cache may answer in its place. Valid only for the snapshot that made it.

    Measured: an indexed check costs a few microseconds, less than computing a cache key, so
    only generic-path decisions, which scan every rule, are cacheable; an explained decision
    never is (the trace is not cached).
    """

    request: DecisionRequest  # as the evaluator takes it
    evaluator: str  # "indexed" or "generic"
    explain: bool
    cacheable: bool
