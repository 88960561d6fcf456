"""The warehouse package's modules import one another without a cycle: a module that
both a target and the seam choosing between the targets need lives below both."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline.warehouse

PACKAGE = "pipeline.warehouse"


def imports(source: str) -> set[str]:
    """Every module an import statement names, function-level imports included."""
    named: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            named.add(node.module)
            named.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
    return named


def package_graph() -> dict[str, set[str]]:
    folder = Path(pipeline.warehouse.__file__).parent
    files = {f"{PACKAGE}.{f.stem}": f for f in sorted(folder.glob("*.py"))}
    return {
        module: {m for m in imports(f.read_text()) if m in files and m != module}
        for module, f in files.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path per back edge of a depth-first walk: empty exactly when acyclic."""
    found: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for dep in sorted(graph[module]):
            if state.get(dep) == "open":
                found.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_count() -> None:
    source = "def f() -> None:\n    from pipeline.warehouse.duckdb import DuckDBTarget\n"
    assert "pipeline.warehouse.duckdb" in imports(source)


def test_the_warehouse_package_has_no_import_cycle() -> None:
    graph = package_graph()
    # open_target's imports, inside the function, are seen: a target importing the seam
    # back would be a cycle found
    assert f"{PACKAGE}.duckdb" in graph[f"{PACKAGE}.target"]
    assert cycles(graph) == []
