"""Role inheritance (`g` rules) as a frozen graph with Casbin's semantics.

Casbin's own role managers create an entry for every name they are asked about, so a stream
of checks for unknown subjects grows memory until the next reload, and its domain manager
rebuilds a role manager on every call. This graph is built once per policy snapshot and
never changes afterwards, so any number of concurrent readers can use it.

Semantics match Casbin's `RoleManager(max_hierarchy_level=10)`: a role is reachable when it is
at most `MAX_HIERARCHY_DEPTH` links away; every name reaches itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping

MAX_HIERARCHY_DEPTH = 9  # Casbin checks 10 levels, the first being the name itself

GFunction = Callable[..., bool]


class RoleGraph:
    """Direct links per domain: `links[domain][member] = (role, ...)` (domain "" = none)."""

    __slots__ = ("_links", "_reach_cache")

    def __init__(self, links: Mapping[str, Mapping[str, tuple[str, ...]]]) -> None:
        self._links = links
        self._reach_cache: dict[tuple[str, str], dict[str, int]] = {}

    @classmethod
    def from_rules(cls, rules: Iterable[tuple[str, ...]]) -> RoleGraph:
        staging: dict[str, dict[str, list[str]]] = {}
        for values in rules:
            member, role = values[0], values[1]
            domain = values[2] if len(values) > 2 else ""
            roles = staging.setdefault(domain, {}).setdefault(member, [])
            if role not in roles:
                roles.append(role)
        return cls({d: {m: tuple(r) for m, r in ms.items()} for d, ms in staging.items()})

    def direct_roles(self, name: str, domain: str = "") -> tuple[str, ...]:
        return self._links.get(domain, {}).get(name, ())

    def reachable(self, name: str, domain: str = "") -> dict[str, int]:
        """Every role `name` inherits (itself included), with its distance in links."""
        key = (domain, name)
        cached = self._reach_cache.get(key)
        if cached is not None:
            return cached
        links = self._links.get(domain, {})
        if name not in links:
            return {name: 0}
        dist = {name: 0}
        frontier = [name]
        for depth in range(1, MAX_HIERARCHY_DEPTH + 1):
            nxt = []
            for current in frontier:
                for role in links.get(current, ()):
                    if role not in dist:
                        dist[role] = depth
                        nxt.append(role)
            if not nxt:
                break
            frontier = nxt
        if len(self._reach_cache) < 100_000:
            self._reach_cache[key] = dist
        return dist

    def has_link(self, name: str, role: str, domain: str = "") -> bool:
        if name == role:
            return True
        if name not in self._links.get(domain, {}):
            return False
        return role in self.reachable(name, domain)

    def path(self, name: str, role: str, domain: str = "") -> tuple[str, ...] | None:
        """The shortest chain of links from `name` to `role`, both included."""
        if name == role:
            return (name,)
        links = self._links.get(domain, {})
        previous: dict[str, str] = {}
        queue = deque([(name, 0)])
        seen = {name}
        while queue:
            current, depth = queue.popleft()
            if depth >= MAX_HIERARCHY_DEPTH:
                continue
            for nxt in links.get(current, ()):
                if nxt in seen:
                    continue
                seen.add(nxt)
                previous[nxt] = current
                if nxt == role:
                    chain = [role]
                    while chain[-1] != name:
                        chain.append(previous[chain[-1]])
                    return tuple(reversed(chain))
                queue.append((nxt, depth + 1))
        return None

    def members(self, domain: str = "") -> set[str]:
        return set(self._links.get(domain, {}))

    def roles(self, domain: str = "") -> set[str]:
        return {r for rs in self._links.get(domain, {}).values() for r in rs}

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self._links)

    def g_function(self) -> GFunction:
        """The `g(name, role[, domain])` matcher function, read-only."""

        def g(name1: str, name2: str, *domain: str) -> bool:
            return self.has_link(name1, name2, str(domain[0]) if domain else "")

        return g
