"""The generic evaluation path: Casbin's own matcher and effect semantics over every rule.

This is `CoreEnforcer.enforce_ex` with three changes: the `g` functions come from our frozen
`RoleGraph` (no per-call mutation, no growth on unknown names), the first matching rule of the
winning effect is remembered for `explain` (Casbin returns none for allow-and-deny models),
and a matcher that reads a property the request lacks does not match that rule.

Missing properties: when evaluating a rule reads a property that is not there, the rule does
not match (like Cedar skipping a policy that errors, OPA's undefined). A matcher whose top
level is `a || b || c` is then evaluated branch by branch, each branch that reads a missing
property counting as false, so a branch that needs no property still matches (as separate OPA
rule bodies would). The answer never depends on rule order, and the missing names are
returned for `explain`.
It works for any model; the indexed path (where present) is only an optimisation of it.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Sequence
from typing import Any

from casbin import util as casbin_util
from casbin.effect import Effector, effect_to_bool
from simpleeval import InvalidExpression

from app.errors import RequestInvalid
from app.policy.request import MissingAttribute


class EvaluationError(RequestInvalid):
    """The request could not be evaluated against this model (e.g. a missing property)."""


class GenericEvaluator:
    name = "generic"

    def __init__(self, enforcer: Any, functions: dict[str, Any]) -> None:
        model = enforcer.model
        self._effector = enforcer.eft
        self._r_tokens: list[str] = list(model["r"]["r"].tokens)
        self._p_tokens: list[str] = list(model["p"]["p"].tokens)
        self._policy: list[list[str]] = model["p"]["p"].policy
        self._eft_key = "p_eft" if "p_eft" in self._p_tokens else None
        matcher: str = model["m"]["m"].value
        self._functions = functions
        self._has_eval = casbin_util.has_eval(matcher)
        self._matcher = matcher
        self._enforcer = enforcer
        self._branches = _top_level_branches(matcher)
        # simpleeval stores the names on the expression object while evaluating, so every
        # thread (the event loop, warming workers) gets an expression of its own.
        self._local = threading.local()

    def evaluate(self, args: Sequence[Any], missing: list[str] | None = None) -> tuple[bool, int]:
        """(allowed, index of the deciding rule or -1); properties some rule read but the
        request lacked are appended to `missing` (once each)."""
        try:
            return self._evaluate(args, missing if missing is not None else [])
        except (
            InvalidExpression,
            TypeError,
            ValueError,
            AttributeError,
            NameError,
            KeyError,
            re.error,  # a rule value that is not a valid pattern for keyMatch2/regexMatch
        ) as exc:
            raise EvaluationError(
                f"the policy could not evaluate this request: {exc}",
                details={"reason": str(exc)},
            ) from None

    def _evaluate(self, args: Sequence[Any], missing: list[str]) -> tuple[bool, int]:
        r_params = dict(zip(self._r_tokens, args, strict=True))
        effects: set[int] = set()
        first_allow = first_deny = -1
        decided = -1
        policy = self._policy
        expression = None if self._has_eval else self._thread_expression()
        if policy:
            for i, pvals in enumerate(policy):
                params = dict(r_params)
                params.update(zip(self._p_tokens, pvals, strict=True))
                if self._has_eval:
                    expression = self._eval_expression(params)
                try:
                    result = expression.eval(params)  # type: ignore[union-attr]
                except MissingAttribute as exc:
                    result = self._branch_by_branch(params, exc, missing)
                if isinstance(result, bool):
                    matched = result
                elif isinstance(result, int | float):
                    matched = result != 0
                else:
                    raise TypeError("matcher result should be bool, int or float")
                if not matched:
                    effects.add(Effector.INDETERMINATE)
                    continue
                eft = params.get(self._eft_key, "allow") if self._eft_key else "allow"
                if eft == "allow":
                    effects.add(Effector.ALLOW)
                    if first_allow < 0:
                        first_allow = i
                elif eft == "deny":
                    effects.add(Effector.DENY)
                    if first_deny < 0:
                        first_deny = i
                else:
                    effects.add(Effector.INDETERMINATE)
                if self._effector.intermediate_effect(effects) != Effector.INDETERMINATE:
                    decided = i
                    break
        else:
            if self._has_eval:
                raise ValueError("a model using eval() needs at least one rule")
            params = dict(r_params)
            params.update(dict.fromkeys(self._p_tokens, ""))
            try:
                matched = bool(expression.eval(params))  # type: ignore[union-attr]
            except MissingAttribute as exc:
                matched = self._branch_by_branch(params, exc, missing)
            effects.add(Effector.ALLOW if matched else Effector.INDETERMINATE)
        allowed = bool(effect_to_bool(self._effector.final_effect(effects)))
        if decided < 0:
            decided = first_allow if allowed else first_deny
        return allowed, decided

    def _branch_by_branch(
        self, params: dict[str, Any], exc: MissingAttribute, missing: list[str]
    ) -> bool:
        """The rule's match when the whole matcher read a missing property: any top-level
        `||` branch that matches without one; False when there is no such branch."""
        _note(missing, exc)
        if self._has_eval or not self._branches:
            return False
        expressions = self._thread_branches()
        for expression in expressions:
            try:
                if expression.eval(params):
                    return True
            except MissingAttribute as inner:
                _note(missing, inner)
        return False

    def _thread_branches(self) -> list[Any]:
        branches = getattr(self._local, "branches", None)
        if branches is None:
            branches = [self._enforcer._get_expression(b, self._functions) for b in self._branches]
            self._local.branches = branches
        return branches

    def _thread_expression(self) -> Any:
        expression = getattr(self._local, "expression", None)
        if expression is None:
            expression = self._enforcer._get_expression(self._matcher, self._functions)
            self._local.expression = expression
        return expression

    def _eval_expression(self, params: dict[str, Any]) -> Any:
        names = casbin_util.get_eval_value(self._matcher)
        rules = [casbin_util.escape_assertion(params[name]) for name in names]
        return self._enforcer._get_expression(
            casbin_util.replace_eval(self._matcher, rules), self._functions
        )

    def rule_at(self, index: int) -> list[str]:
        return self._policy[index]


def _note(missing: list[str], exc: MissingAttribute) -> None:
    name = f"{exc.owner}.{exc.name}"
    if name not in missing:
        missing.append(name)


def _top_level_branches(matcher: str) -> list[str]:
    """The branches of a matcher whose top level is `a || b || ...` (Python syntax)."""
    expr = casbin_util.remove_comments(matcher)
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        return []
    if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.Or):
        return [ast.unparse(v) for v in tree.values]
    return []
