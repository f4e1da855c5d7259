"""Role definitions with declared functions, decided by Casbin's own role managers.

Pattern roles (``g.match = keyMatch2``), pattern domains (``g.domain_match``) and conditional
links (``g.condition = timeMatch``) follow rules subtle enough (patterns on both sides of a
link, per-domain managers, one more hierarchy level for conditional links) that the only
faithful implementation is Casbin's. This wraps one built role manager as the matcher's
`g` function with what a shared service needs:

- one lock: Casbin's managers create entries while answering, so calls never overlap;
- bounded memory: those entries grow with every unknown name or domain asked about; past a
  limit the manager is rebuilt from the rules (the answers are the same, the growth is gone);
- a bounded answer cache when links carry no condition (a time window's answer changes with
  the clock, so conditional links are asked every time).

Casbin's role objects point at each other (roles and users), so a dropped manager is cyclic
garbage: the engine's full collection at each policy load reclaims it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import casbin

from app.policy.functions import CONDITIONS, MATCHING
from app.policy.model import ModelInfo

_CACHE_LIMIT = 100_000
_GROWTH_CHECK_EVERY = 1024
_GROWTH_ALLOWANCE = 10_000


def _plain(value: Any) -> Any:
    """Casbin keeps the names it is asked about: keep plain text, not request entities."""
    return str.__str__(value) if isinstance(value, str) else value


def _size(rm: Any) -> int:
    size = len(getattr(rm, "all_roles", ()))
    for inner in getattr(rm, "rm_map", {}).values():
        size += 1 + len(getattr(inner, "all_roles", ()))
    return size


def build_role_manager(
    model: ModelInfo,
    ptype: str,
    rules: Sequence[Sequence[str]],
    names: Sequence[str] = (),
) -> Any:
    """The role manager a `casbin.Enforcer` would use for `ptype` after the code a Casbin
    user writes for the declared functions (matching functions, link conditions).

    `names` (the rule subjects, for the indexed path) are entered as Casbin enters a name it
    is asked about: a name matched by a pattern role gets that pattern's links. Entering
    them first changes no answer; it makes every role a name reaches visible from it."""
    enforcer = casbin.Enforcer(model.new_casbin_model())
    declared = model.functions.for_role(ptype)
    assertion = enforcer.model["g"][ptype]
    assertion.policy = [list(rule) for rule in rules]
    if ptype in enforcer.cond_rm_map:
        manager = enforcer.cond_rm_map[ptype]
        assertion.build_conditional_role_links(manager)
        if declared.condition is not None:
            condition = CONDITIONS[declared.condition][0]
            with_domain = model.role_arity[ptype] > 2
            for rule in rules:
                if with_domain:
                    enforcer.add_named_domain_link_condition_func(
                        ptype, rule[0], rule[1], rule[2], condition
                    )
                else:
                    enforcer.add_named_link_condition_func(ptype, rule[0], rule[1], condition)
        return manager
    manager = enforcer.rm_map[ptype]
    if declared.match is not None:
        enforcer.add_named_matching_func(ptype, MATCHING[declared.match])
    if declared.domain_match is not None:
        enforcer.add_named_domain_matching_func(ptype, MATCHING[declared.domain_match])
    assertion.build_role_links(manager)
    if declared.domain_match is None and model.role_arity[ptype] == 2:
        for name in names:
            manager._get_role(name)
    return manager


class CasbinRoleFunction:
    """`g(name, role[, domain])` answered by a Casbin role manager, safely shared."""

    def __init__(self, build: Callable[[], Any], *, conditional: bool) -> None:
        self._build = build
        self._manager = build()
        self._baseline = _size(self._manager)
        self._lock = threading.Lock()
        self._calls = 0
        self._cache: dict[tuple[Any, ...], bool] | None = None if conditional else {}
        self._reach: dict[tuple[str, str], dict[str, int]] = {}

    def __call__(self, name1: Any, name2: Any, *domain: Any) -> bool:
        key = (_plain(name1), _plain(name2), *(str(d) for d in domain[:1]))
        cache = self._cache
        if cache is not None:
            hit = cache.get(key)
            if hit is not None:
                return hit
        with self._lock:
            result = bool(self._manager.has_link(*key))
            self._bound_growth()
        if cache is not None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = result
        return result

    def _bound_growth(self) -> None:
        self._calls += 1
        if (
            self._calls % _GROWTH_CHECK_EVERY == 0
            and _size(self._manager) > 2 * self._baseline + _GROWTH_ALLOWANCE
        ):
            self._manager = self._build()

    def reachable(self, name: str, domain: str = "") -> dict[str, int]:
        """Every role `name` reaches in `domain` (itself included) with its distance, for
        managers without link conditions (what the indexed path needs). With pattern
        domains, Casbin's manager for `domain` already holds the links of every domain
        pattern matching it."""
        key = (domain, name)
        cached = self._reach.get(key)
        if cached is not None:
            return cached
        with self._lock:
            manager = self._manager
            if hasattr(manager, "rm_map"):  # a domain manager: Casbin's per-domain manager
                manager = manager._get_role_manager(domain)
            dist = self._reachable(manager, _plain(name))
            self._bound_growth()
        if len(self._reach) >= _CACHE_LIMIT:
            self._reach.clear()
        self._reach[key] = dist
        return dist

    @staticmethod
    def _reachable(manager: Any, name: str) -> dict[str, int]:
        start = manager._get_role(name)
        dist = {start.name: 0}
        frontier = [start]
        for depth in range(1, manager.max_hierarchy_level):
            nxt = []
            for role in frontier:
                for parent in role.roles:
                    if parent.name not in dist:
                        dist[parent.name] = depth
                        nxt.append(parent)
            if not nxt:
                break
            frontier = nxt
        return dist
