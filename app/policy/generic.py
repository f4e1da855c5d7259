"""The generic evaluation path: Casbin's own matcher and effect semantics over every rule.

This is `CoreEnforcer.enforce_ex` with four changes: the `g` functions come from our frozen
`RoleGraph` (no per-call mutation, no growth on unknown names) or, for role definitions with
declared functions, from Casbin's own role manager behind a lock (`app.policy.casbin_roles`);
the matcher is compiled to bytecode once (`app.policy.compiled`) instead of walked by
simpleeval for every rule; the first matching rule of the winning effect is remembered for
`explain` (Casbin returns none for allow-and-deny models); and a matcher that reads a
property the request lacks is reported, not crashed on. One evaluator serves one
request/policy/matcher definition (`r`/`p`/`m`, or `r2`/`p2`/`m2`: Casbin's enforce
context), with the model's `e` effect for all of them, as Casbin does.
It works for any model; the indexed path (where present) is only an optimisation of it.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from casbin import util as casbin_util
from casbin.effect import Effector, effect_to_bool
from simpleeval import InvalidExpression

from app.errors import RequestInvalid
from app.policy.compiled import compile_scan
from app.policy.request import MissingAttribute


class EvaluationError(RequestInvalid):
    """The request could not be evaluated against this model (e.g. a missing property)."""


class GenericEvaluator:
    name = "generic"

    def __init__(self, enforcer: Any, functions: dict[str, Any], suffix: str = "") -> None:
        model = enforcer.model
        self._effector = enforcer.eft  # Casbin uses `e` for every definition
        self._r_tokens: list[str] = list(model["r"][f"r{suffix}"].tokens)
        self._p_tokens: list[str] = list(model["p"][f"p{suffix}"].tokens)
        self._policy: list[list[str]] = model["p"][f"p{suffix}"].policy
        eft_key = f"p{suffix}_eft"
        self._eft_index = self._p_tokens.index(eft_key) if eft_key in self._p_tokens else None
        matcher: str = model["m"][f"m{suffix}"].value
        self._functions = functions
        self._has_eval = casbin_util.has_eval(matcher)
        self._matcher = matcher
        self._enforcer = enforcer
        # The matcher compiled to bytecode when it only uses what simpleeval allows; else
        # Casbin's own simpleeval expression, one per thread (simpleeval stores the names on
        # the expression object while evaluating).
        self._scan = compile_scan(matcher, self._r_tokens, self._p_tokens, functions)
        self._local = threading.local()
        self._branches = _top_level_branches(matcher)

    @property
    def compiled(self) -> bool:
        return self._scan is not None

    def evaluate(self, args: Sequence[Any], missing: list[str] | None = None) -> tuple[bool, int]:
        """(allowed, index of the deciding rule or -1).

        A rule whose matcher reads a property the request lacks does not match (never an
        error, whatever the rule order); a top-level `a || b` matcher is then read branch by
        branch. The missing names are appended to `missing` (for `explain`)."""
        try:
            if len(args) != len(self._r_tokens):
                raise ValueError(
                    f"the request has {len(args)} values, the model's request definition "
                    f"{len(self._r_tokens)}"
                )
            try:
                return self._evaluate(args)
            except MissingAttribute:
                return self._evaluate_tolerant(args, missing if missing is not None else [])
        except (
            InvalidExpression,
            TypeError,
            ValueError,
            AttributeError,
            NameError,
            KeyError,
            IndexError,
            RuntimeError,  # a link condition with an unreadable time
            re.error,  # a rule value that is not a valid pattern for keyMatch2/regexMatch
        ) as exc:
            raise EvaluationError(
                f"the policy could not evaluate this request: {exc}",
                details={"reason": str(exc)},
            ) from None

    def _matches(self, args: Sequence[Any]) -> Iterator[int]:
        """Positions of the rules whose matcher is true, in policy order."""
        policy = self._policy
        if self._scan is not None:
            yield from self._scan(*args, policy)
            return
        r_params = dict(zip(self._r_tokens, args, strict=True))
        expression = None if self._has_eval else self._thread_expression()
        for i, pvals in enumerate(policy):
            params = dict(r_params)
            params.update(zip(self._p_tokens, pvals, strict=True))
            if self._has_eval:
                expression = self._eval_expression(params)
            result = expression.eval(params)  # type: ignore[union-attr]
            if isinstance(result, bool):
                matched = result
            elif isinstance(result, int | float):
                matched = result != 0
            else:
                raise TypeError("matcher result should be bool, int or float")
            if matched:
                yield i

    def _evaluate(self, args: Sequence[Any]) -> tuple[bool, int]:
        effects: set[int] = set()
        first_allow = first_deny = -1
        decided = -1
        policy = self._policy
        if policy:
            eft_index = self._eft_index
            intermediate = self._effector.intermediate_effect
            # Rules that do not match add "indeterminate", which no effector reads: skipped.
            for i in self._matches(args):
                eft = policy[i][eft_index] if eft_index is not None else "allow"
                if eft == "allow":
                    effects.add(Effector.ALLOW)
                    if first_allow < 0:
                        first_allow = i
                elif eft == "deny":
                    effects.add(Effector.DENY)
                    if first_deny < 0:
                        first_deny = i
                else:  # any other effect counts as no effect, as in Casbin
                    effects.add(Effector.INDETERMINATE)
                if intermediate(effects) != Effector.INDETERMINATE:
                    decided = i
                    break
        else:
            if self._has_eval:
                raise ValueError("a model using eval() needs at least one rule")
            empty = [tuple("" for _ in self._p_tokens)]
            matched = False
            if self._scan is not None:
                matched = any(True for _ in self._scan(*args, empty))
            else:
                params = dict(zip(self._r_tokens, args, strict=True))
                params.update(dict.fromkeys(self._p_tokens, ""))
                matched = bool(self._thread_expression().eval(params))
            effects.add(Effector.ALLOW if matched else Effector.INDETERMINATE)
        allowed = bool(effect_to_bool(self._effector.final_effect(effects)))
        if decided < 0:
            decided = first_allow if allowed else first_deny
        return allowed, decided

    def _evaluate_tolerant(self, args: Sequence[Any], missing: list[str]) -> tuple[bool, int]:
        """`_evaluate` rule by rule, a rule that reads a missing property not matching."""
        effects: set[int] = set()
        first_allow = first_deny = -1
        decided = -1
        policy = self._policy
        r_params = dict(zip(self._r_tokens, args, strict=True))
        empty = [["" for _ in self._p_tokens]]
        for i, pvals in enumerate(policy or empty):
            params = dict(r_params)
            params.update(zip(self._p_tokens, pvals, strict=True))
            expression = (
                self._eval_expression(params) if self._has_eval else self._thread_expression()
            )
            try:
                matched = bool(expression.eval(params))
            except MissingAttribute as exc:
                matched = self._branch_by_branch(params, exc, missing)
            if not policy:
                effects.add(Effector.ALLOW if matched else Effector.INDETERMINATE)
                break
            if not matched:
                continue
            eft = pvals[self._eft_index] if self._eft_index is not None else "allow"
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
        allowed = bool(effect_to_bool(self._effector.final_effect(effects)))
        if decided < 0:
            decided = first_allow if allowed else first_deny
        return allowed, decided

    def _branch_by_branch(
        self, params: dict[str, Any], exc: MissingAttribute, missing: list[str]
    ) -> bool:
        """Any top-level `||` branch that matches without a missing property."""
        _note(missing, exc)
        if self._has_eval or not self._branches:
            return False
        branches = getattr(self._local, "branches", None)
        if branches is None:
            branches = [self._enforcer._get_expression(b, self._functions) for b in self._branches]
            self._local.branches = branches
        for expression in branches:
            try:
                if expression.eval(params):
                    return True
            except MissingAttribute as inner:
                _note(missing, inner)
        return False

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
