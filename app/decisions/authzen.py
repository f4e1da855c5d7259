"""AuthZEN Authorization API 1.0 semantics over the decision service.

The HTTP module (`app.api.authzen`) parses the wire format and renders answers; what a
request means lives here:

- `context.domain` is the request's domain; `context.definition` ("r2" or "2") selects the
  model's r2/p2/m2, whose tokens other than subject/resource/action/domain come from
  `context` by name;
- `evaluations` run under one of three semantics: `execute_all` answers every item (one
  batch, one snapshot); `deny_on_first_deny` and `permit_on_first_permit` answer items in
  order and stop after the first deny or permit. An item that could not be read counts as a
  deny: it stops `deny_on_first_deny` and never stops `permit_on_first_permit`;
- a tenant is a domain of a policy model with domains: its evaluations cannot leave it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from app.decisions.service import DecisionResult, DecisionService
from app.errors import AuthzError, NotFound, RequestInvalid
from app.policy.request import DecisionRequest
from app.policy.snapshot import PolicySnapshot

Semantic = Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"]

Item = DecisionRequest | RequestInvalid
"""One evaluation as read from the request: a decision request, or why it is not one."""

Answer = DecisionResult | AuthzError
"""One evaluation's answer: a decision, or the item's own error."""

_DEFINITION = re.compile(r"r?[0-9]{0,3}")


def domain_of(context: dict[str, Any] | None) -> str | None:
    value = (context or {}).get("domain")
    return value if isinstance(value, str) and value else None


def definition_of(context: dict[str, Any] | None) -> str | None:
    value = (context or {}).get("definition")
    if value is None:
        return None
    if not isinstance(value, str) or not _DEFINITION.fullmatch(value):
        raise RequestInvalid(
            'context.definition must name a request definition such as "r2"',
            details={"fields": [{"field": "context.definition", "message": "like r2"}]},
        )
    return value


def require_tenant(snapshot: PolicySnapshot, tenant: str) -> str:
    """`tenant` when it is a domain of the policy; NotFound otherwise."""
    if not snapshot.model.has_domain or tenant not in snapshot.domains:
        raise NotFound(
            f"no tenant {tenant!r}: tenants are the domains of a policy model with domains",
            details={"tenant": tenant},
        )
    return tenant


def in_tenant(context: dict[str, Any] | None, tenant: str) -> dict[str, Any]:
    """`context` with its domain set to `tenant` (whatever the caller gave)."""
    return {**(context or {}), "domain": tenant}


def evaluations_of(
    defaults: dict[str, Any], items: Sequence[dict[str, Any]] | None, *, tenant: str | None
) -> list[dict[str, Any]]:
    """The evaluations a batch asks for, still unparsed: each item over the request's
    top-level values (an item's own value wins; null means absent); no items means one
    evaluation of the top-level values alone. In a tenant every context's domain is it."""
    base = {k: v for k, v in defaults.items() if v is not None}
    out = []
    for item in items or [{}]:
        merged = {**base, **{k: v for k, v in item.items() if v is not None}}
        if tenant is not None:
            merged["context"] = in_tenant(merged.get("context"), tenant)
        out.append(merged)
    return out


async def evaluate_all(
    decisions: DecisionService, items: Sequence[Item], semantic: Semantic
) -> list[Answer]:
    """The answers of `items` in order; under a short-circuit semantic, up to and including
    the item that stopped the evaluation."""
    if semantic == "execute_all":
        valid = [item for item in items if isinstance(item, DecisionRequest)]
        answered = iter((await decisions.check_many(valid)).results)
        return [item if isinstance(item, RequestInvalid) else next(answered) for item in items]
    stop_on = semantic == "permit_on_first_permit"
    out: list[Answer] = []
    for item in items:
        if isinstance(item, RequestInvalid):
            out.append(item)
            allowed = False
        else:
            answer = (await decisions.check_many([item])).results[0]
            out.append(answer)
            allowed = isinstance(answer, DecisionResult) and answer.allowed
        if allowed == stop_on:
            break
    return out
