"""The layers of docs/architecture.md, checked on the source (no import is executed).

Every module under app/ is parsed; every import statement counts, wherever it stands:
module level, inside a function, or under `if TYPE_CHECKING:` (a type-only import still
ties the importer to the imported package).

- A module imports only packages of its own layer or of the layers below it.
- Kernel and domain modules import no web framework, ORM or Redis client.
- The top-level packages of app/ (a module such as app/services.py counts as one) form no
  cycle.
- Every top-level package has a layer here, so a new one is placed on purpose.
- Inside the domain, packages import one another only along the edges drawn here (and in
  docs/architecture.md), so a new dependency between domain packages is made on purpose.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.source import parse

APP = Path(__file__).resolve().parents[2] / "app"

# Lowest first. A package may import its own layer and the ones above it in this list.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    # Shared by every layer: errors, address syntax, start-up failure, logs and metrics.
    ("kernel", frozenset({"errors", "addresses", "startup", "observability", "heap"})),
    # Pure logic and the ports (typing.Protocol) it needs; takes values, not Settings.
    (
        "domain",
        frozenset(
            {"policy", "decisions", "cache", "tokens", "security", "audit", "administration"}
        ),
    ),
    # The environment, validated (with the domain's rules for names, passwords, secrets).
    ("settings", frozenset({"config"})),
    # Bindings to infrastructure: SQL (app/store), Redis and Starlette (app/adapters).
    ("adapters", frozenset({"store", "adapters"})),
    # What one instance owns, built from settings and adapters.
    ("container", frozenset({"services", "token_services", "factories"})),
    # The HTTP layer: routes reach the container through dependencies.
    ("http", frozenset({"api"})),
    # Entry points: the ASGI app factory, the server, the command line.
    ("entry", frozenset({"main", "serving", "cli", "commands"})),
)
# Inside the domain, who may import whom (nothing else; the drawing of docs/architecture.md).
DOMAIN_EDGES: dict[str, frozenset[str]] = {
    "policy": frozenset(),
    "cache": frozenset(),
    "audit": frozenset(),
    "security": frozenset({"audit"}),
    "decisions": frozenset({"policy", "cache"}),
    "tokens": frozenset({"policy", "decisions", "cache", "security", "audit"}),
    "administration": frozenset({"policy", "tokens", "security", "audit"}),
}
RANK = {package: rank for rank, (_, packages) in enumerate(LAYERS) for package in packages}
LAYER_OF = {package: name for name, packages in LAYERS for package in packages}
CORE = {
    package for name, packages in LAYERS if name in ("kernel", "domain") for package in packages
}
FORBIDDEN_LIBRARIES = frozenset(
    {
        "fastapi",
        "starlette",
        "sqlalchemy",
        "redis",
        "alembic",
        "casbin_sqlalchemy_adapter",
        "psycopg",
        "aiosqlite",
        "uvicorn",
    }
)


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name, e.g. "app.cache.keys"
    target: str  # dotted name as imported (a module, or a module's attribute)
    line: int

    @property
    def where(self) -> str:
        return f"{self.importer}:{self.line} imports {self.target}"


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def imports_of(path: Path) -> Iterator[Import]:
    name, is_package = module_name(path)
    tree = parse(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "app":  # `from app import config`: the names are the modules
                for alias in node.names:
                    yield Import(name, f"app.{alias.name}", node.lineno)
            else:
                yield Import(name, module, node.lineno)


def all_imports() -> list[Import]:
    return [i for path in sorted(APP.rglob("*.py")) for i in imports_of(path)]


def top_level(dotted: str) -> str | None:
    """`app.cache.keys` -> `cache`; None outside app (or for `app` itself)."""
    parts = dotted.split(".")
    return parts[1] if parts[0] == "app" and len(parts) > 1 else None


def layer_violations(imports: list[Import]) -> list[str]:
    found = []
    for imp in imports:
        source, target = top_level(imp.importer), top_level(imp.target)
        if source is None:
            continue
        if source in CORE and imp.target.split(".")[0] in FORBIDDEN_LIBRARIES:
            found.append(f"{imp.where} (a library the {LAYER_OF[source]} may not use)")
        elif target in RANK and source in RANK and RANK[target] > RANK[source]:
            found.append(
                f"{imp.where} (the {LAYER_OF[source]} layer may not import the "
                f"{LAYER_OF[target]} layer)"
            )
    return found


def package_graph(imports: list[Import]) -> dict[str, dict[str, list[Import]]]:
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for imp in imports:
        source, target = top_level(imp.importer), top_level(imp.target)
        if source is not None and target is not None and source != target:
            graph[source][target].append(imp)
    return graph


def cycles(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """One cycle through each strongly connected group of packages (Tarjan, then a path)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, {})):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    nodes = sorted(set(graph) | {t for edges in graph.values() for t in edges})
    for node in nodes:
        if node not in index:
            visit(node)
    return [_path_back(group, graph) for group in groups]


def _path_back(group: list[str], graph: dict[str, dict[str, list[Import]]]) -> list[str]:
    """A shortest cycle from the group's first member back to itself, inside the group."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                return [*paths[node], start]
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {group}")


def describe(cycle: list[str], graph: dict[str, dict[str, list[Import]]]) -> str:
    steps = [f"  {a} -> {b}: {graph[a][b][0].where}" for a, b in itertools.pairwise(cycle)]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def test_imports_respect_the_layers() -> None:
    violations = layer_violations(all_imports())
    assert not violations, (
        "imports against the layers (put an infrastructure binding in app/adapters or "
        "app/store, behind a Protocol the domain package owns):\n" + "\n".join(violations)
    )


def test_top_level_packages_form_no_cycle() -> None:
    graph = package_graph(all_imports())
    found = cycles(graph)
    assert not found, "import cycles between app packages:\n" + "\n".join(
        describe(c, graph) for c in found
    )


def test_every_package_has_a_layer() -> None:
    packages = {
        path.stem if path.is_file() else path.name
        for path in APP.iterdir()
        if (path.is_dir() and (path / "__init__.py").is_file())
        or (path.suffix == ".py" and path.stem != "__init__")
    }
    assert packages <= RANK.keys(), f"give these a layer in {__name__}: {packages - RANK.keys()}"
    assert RANK.keys() <= packages, f"layers name what no longer exists: {RANK.keys() - packages}"


def domain_edges_not_drawn(graph: dict[str, dict[str, list[Import]]]) -> list[str]:
    return [
        f"{source} -> {target}: {graph[source][target][0].where}"
        for source, targets in sorted(graph.items())
        if source in DOMAIN_EDGES
        for target in sorted(targets)
        if LAYER_OF.get(target) == "domain" and target not in DOMAIN_EDGES[source]
    ]


def test_domain_packages_depend_only_as_drawn() -> None:
    graph = package_graph(all_imports())
    assert DOMAIN_EDGES.keys() == {p for p, layer in LAYER_OF.items() if layer == "domain"}
    new = domain_edges_not_drawn(graph)
    assert not new, (
        "domain packages importing one another outside DOMAIN_EDGES (add the edge here and "
        "to docs/architecture.md if it is meant, or invert it behind a Protocol):\n"
        + "\n".join(new)
    )
    drawn = {(s, t) for s, targets in DOMAIN_EDGES.items() for t in targets}
    used = {(s, t) for s in DOMAIN_EDGES for t in graph.get(s, {}) if t in DOMAIN_EDGES}
    assert drawn <= used, f"edges drawn that no import uses any more: {sorted(drawn - used)}"


def test_the_checks_see_a_bad_import_and_a_cycle() -> None:
    """The checks themselves: a domain module importing Redis or an adapter, an adapter
    importing the container, and a cycle inside one layer."""
    redis = Import("app.policy.engine", "redis.asyncio", 1)
    up = Import("app.cache.keys", "app.store.models", 2)
    down = Import("app.store.users", "app.tokens.models", 3)
    root = Import("app.adapters.redis.layer", "app.services", 4)
    found = layer_violations([redis, up, down, root])
    assert [line.split(" (")[0] for line in found] == [redis.where, up.where, root.where]
    there = Import("app.policy.engine", "app.cache.keys", 5)
    back = Import("app.cache.keys", "app.policy.rules", 6)
    graph = package_graph([there, back])
    assert cycles(graph) == [["cache", "policy", "cache"]]
    assert "app.cache.keys:6 imports app.policy.rules" in describe(cycles(graph)[0], graph)
    sideways = Import("app.policy.engine", "app.tokens.models", 7)
    assert domain_edges_not_drawn(package_graph([sideways])) == [
        "policy -> tokens: app.policy.engine:7 imports app.tokens.models"
    ]
