"""The layers of docs/architecture.md, checked on the source (no import is executed).

Every module under app/ is parsed; every import statement counts, wherever it stands:
module level, inside a function, or under `if TYPE_CHECKING:` (a type-only import still
ties the importer to the imported package).

- The core (kernel and domain packages) imports no web framework, ORM or Redis client, and
  none of the adapter, HTTP or composition-root packages; adapters import neither the HTTP
  layer nor the composition root.
- The top-level packages of app/ (a module such as app/services.py counts as one) form no
  cycle.
- Every top-level package has a layer here, so a new one is placed on purpose.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"

# Shared by every layer: errors, settings, address syntax, logging and metrics.
KERNEL = frozenset({"errors", "config", "addresses", "startup", "observability"})
# The domain core: pure logic and the ports (typing.Protocol) it needs.
DOMAIN = frozenset(
    {"policy", "decisions", "cache", "tokens", "security", "audit", "administration"}
)
# Bindings to infrastructure: SQL (app/store), Redis and Starlette (app/adapters).
ADAPTERS = frozenset({"store", "adapters"})
# The HTTP layer itself, and the modules that build and run an instance.
EDGE = frozenset({"api"})
ROOT = frozenset({"main", "services", "token_services", "serving", "cli", "commands"})
LAYERS = KERNEL | DOMAIN | ADAPTERS | EDGE | ROOT

CORE = KERNEL | DOMAIN
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
FORBIDDEN_PACKAGES = ADAPTERS | EDGE | ROOT


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
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
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
        if source in CORE:
            library = imp.target.split(".")[0]
            if library in FORBIDDEN_LIBRARIES or target in FORBIDDEN_PACKAGES:
                found.append(imp.where)
        elif source in ADAPTERS and target in EDGE | ROOT:
            found.append(imp.where)
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
        "kernel/domain modules must not import web, SQL or Redis libraries, nor "
        f"{sorted(FORBIDDEN_PACKAGES)} (adapters: nor {sorted(EDGE | ROOT)}); put the binding "
        "in app/adapters or app/store behind a Protocol the domain owns:\n" + "\n".join(violations)
    )


def test_top_level_packages_form_no_cycle() -> None:
    graph = package_graph(all_imports())
    found = cycles(graph)
    assert not found, "import cycles between app packages:\n" + "\n".join(
        describe(c, graph) for c in found
    )


def test_every_package_has_a_layer() -> None:
    present = {p.stem if p.is_file() else p.name for p in APP.iterdir()}
    packages = {
        name
        for name in present
        if (APP / name / "__init__.py").is_file() or (APP / f"{name}.py").is_file()
    } - {"__init__"}
    assert packages <= LAYERS, f"place these in a layer of {__name__}: {packages - LAYERS}"
    assert packages >= LAYERS, f"layers name packages that no longer exist: {LAYERS - packages}"


def test_the_checks_see_a_bad_import_and_a_cycle() -> None:
    """The checks themselves: a domain module importing Redis, and a two-package cycle."""
    bad = Import("app.policy.engine", "redis.asyncio", 1)
    up = Import("app.cache.keys", "app.store.models", 2)
    fine = Import("app.store.users", "app.tokens.models", 4)
    root = Import("app.adapters.redis.layer", "app.services", 5)
    assert layer_violations([bad, up, fine, root]) == [bad.where, up.where, root.where]
    back = Import("app.store.models", "app.cache.keys", 3)
    graph = package_graph([up, back])
    assert cycles(graph) == [["cache", "store", "cache"]]
