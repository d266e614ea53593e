"""The package's layering, enforced: a module imports only from its own layer or below, and no imports go round in a circle.

The layer order is written down once, in :data:`LAYERS` (docs: ``DESIGN.md``'s layer table).
Imports are read from the source (every ``import``, in functions and ``TYPE_CHECKING`` blocks
too), so a lazy import cannot hide an arrow that runs back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "realness"

#: The layers from the ground up; each entry is a module or package below ``realness``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "registry", "runtime"),
    ("io",),
    ("hub", "text"),
    ("core", "describers", "data"),
    ("dream", "training", "evaluation"),
    ("workflows", "distributed"),
    ("cli", "metrics", "pytest_plugin", "__init__"),
)
LAYER_OF = {room: level for level, rooms in enumerate(LAYERS, start=1) for room in rooms}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The ``realness`` modules ``path`` imports (a ``from package import submodule`` names the submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "realness")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "realness":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
    return found - {"realness"}


def room(module: str) -> str:
    """The layer-table entry a module belongs to: ``realness.io.tables`` -> ``io``; ``realness`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported_modules(path, set(found)) for name, path in found.items()}


def test_every_module_has_a_layer(graph):
    assert sorted({room(name) for name in graph} - set(LAYER_OF)) == []


def test_no_module_imports_from_a_higher_layer(graph):
    upward = [
        f"{name} (layer {LAYER_OF[room(name)]}) imports {target} (layer {LAYER_OF[room(target)]})"
        for name, targets in sorted(graph.items())
        for target in sorted(targets)
        if LAYER_OF[room(target)] > LAYER_OF[room(name)]
    ]
    assert upward == []


def test_no_import_cycles(graph):
    cycles = find_cycles(graph)
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules of each group that import one another in a circle (Tarjan's strongly connected components)."""
    edges = {name: {target for target in targets if target in graph} for name, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in edges[node]:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_the_checks_catch_an_arrow_back_up_and_a_cycle():
    # The checks themselves, on a made-up graph: io importing workflows runs up; a -> b -> a is a circle.
    made_up = {"realness.io.x": {"realness.workflows.y"}, "realness.workflows.y": {"realness.io.x"}}
    assert [n for n, ts in made_up.items() for t in ts if LAYER_OF[room(t)] > LAYER_OF[room(n)]] == ["realness.io.x"]
    assert find_cycles(made_up) == [["realness.io.x", "realness.workflows.y"]]
