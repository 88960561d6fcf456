"""Check that the imports of ``pipeline/`` point down the layers and form no cycle.

Run it from the repository root (``make layers`` does)::

    python tools/layers.py           # the check: exit 0 when clean, 1 otherwise
    python tools/layers.py --graph   # every module, its layer and what it imports

It reads every module under ``pipeline/`` with ``ast`` (nothing is imported, so it
needs only the standard library) and collects its imports of other ``pipeline``
modules, wherever they stand: at module level, inside a function, or under
``if TYPE_CHECKING:``. Then:

* **Cycles.** Modules that reach each other through imports form a cycle. A cycle
  made only of module-level imports is reported as such; one that closes only
  through an import inside a function (which runs later, so Python tolerates it) is
  reported separately, but still counts. Type-only imports are left out of cycles:
  they never run.
* **Layers.** ``LAYERS`` below is the declared order, lowest first; a module may
  import its own layer and those below, never one above. Type-only imports count
  here too: a type from a higher layer is still a dependency pointing up.

Known exceptions are listed in ``KNOWN_CYCLES`` and ``KNOWN_UPWARD`` with a reason
each. An exception that no longer occurs is reported as fixed (not a failure), so
the entry can be deleted.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pipeline"

# The declared order of layers, lowest first, derived from the imports as they are
# (``--graph`` prints them). A name is a module or a package (then every module under
# it); the most specific name decides a module's layer, and every ``*.command`` module
# belongs to "commands" whatever its package.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # The words every stage shares: settings, errors, the webhooks, a record, Plug's wire
    # shapes and our events. Imports nothing above itself.
    (
        "vocabulary",
        (
            "pipeline",
            "pipeline.errors",
            "pipeline.record",
            "pipeline.webhooks",
            "pipeline.config",
            "pipeline.kafka_client",
            "pipeline.extras",
            "pipeline.plug",
            "pipeline.events",
        ),
    ),
    # The machine room of every long-running command: tasks, logs, metrics, memory.
    ("runtime", ("pipeline.runtime",)),
    # Pure functions of the vocabulary: one body to a record, the topic plan, and the
    # documents written from the Structs. The plan lives in ops/ beside the commands that
    # show it, and the ingress creates topics from it; the ingress serves the OpenAPI
    # document; so both sit below the stages, not with the commands.
    (
        "core",
        (
            "pipeline.ingest",
            "pipeline.route",
            "pipeline.ops.plan",
            "pipeline.specs",
            "pipeline.privacy",
        ),
    ),
    # The stages of the path and beside it; Plug's API client talks HTTP, so it is one.
    (
        "stages",
        (
            "pipeline.http",
            "pipeline.sink",
            "pipeline.spool",
            "pipeline.consume",
            "pipeline.warehouse",
            "pipeline.lake",
            "pipeline.report",
            "pipeline.simulate",
            "pipeline.live",
            "pipeline.plug.api",
        ),
    ),
    # The ingress process: builds the stages and runs them.
    ("process", ("pipeline.app", "pipeline.serve")),
    # What the console script runs.
    ("commands", ("pipeline.ops", "pipeline.cli", "pipeline.__main__")),
)

COMMAND_MODULE = "command"
COMMANDS_LAYER = "commands"

# Cycles known to exist, each with the reason it is tolerated. A cycle found is
# excused when its modules are all within one entry.
KNOWN_CYCLES: dict[frozenset[str], str] = {}

# Imports that point up a layer, as (importer, imported), each with its reason.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import of a ``pipeline`` module by another."""

    importer: str
    imported: str
    line: int
    kind: str  # "module", "function" or "type"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path) -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {
        module_name(path, root): path
        for path in sorted((root / PACKAGE).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _walk(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Import statements under ``node``, each with where it stands."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, kind
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, "type" if kind == "type" else "function")
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.body:
                yield from _walk_one(statement, "type")
            for statement in child.orelse:
                yield from _walk_one(statement, kind)
        else:
            yield from _walk(child, kind)


def _walk_one(node: ast.stmt, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, kind
    else:
        yield from _walk(node, kind)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` loads: itself, else the nearest package above it."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """The ``pipeline`` modules that module ``name`` imports, wherever it imports them."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[tuple[str, str], Import] = {}
    for node, kind in _walk(tree, "module"):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from a import b`` loads a.b when b is a module, else takes a name from a.
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != name:
                # One edge per module and kind, at its first line.
                found.setdefault((resolved, kind), Import(name, resolved, node.lineno, kind))
    return list(found.values())


def build_graph(root: Path = ROOT) -> list[Import]:
    modules = find_modules(root)
    edges: list[Import] = []
    for name, path in modules.items():
        edges.extend(imports_of(name, path, modules))
    return edges


def layer_of(module: str) -> str | None:
    """The layer ``module`` belongs to, or None when ``LAYERS`` does not place it."""
    if module.rpartition(".")[2] == COMMAND_MODULE:
        return COMMANDS_LAYER
    best: str | None = None
    best_length = -1
    for layer, names in LAYERS:
        for name in names:
            # The package root names only itself, so a new module at the root must be
            # placed on purpose rather than fall into the vocabulary.
            below = name != PACKAGE and module.startswith(name + ".")
            if (module == name or below) and len(name) > best_length:
                best, best_length = layer, len(name)
    return best


def _rank(layer: str | None) -> int:
    names = [name for name, _ in LAYERS]
    return names.index(layer) if layer is not None else len(names)


def cycles(edges: Iterable[Import], kinds: frozenset[str]) -> list[frozenset[str]]:  # noqa: C901
    """Strongly connected sets of two or more modules, through imports of ``kinds``.

    Tarjan's algorithm, kept whole: its branches share the index, low and stack state.
    """
    graph: dict[str, set[str]] = {}
    for edge in edges:
        if edge.kind in kinds:
            graph.setdefault(edge.importer, set()).add(edge.imported)
            graph.setdefault(edge.imported, set())
    # Tarjan's algorithm, iterative so that a deep import chain cannot hit the
    # recursion limit.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return sorted(found, key=sorted)


def upward(edges: Iterable[Import]) -> list[Import]:
    """Imports of a module in a higher layer than the importer's."""
    return [
        edge
        for edge in edges
        if None not in (layer_of(edge.importer), layer_of(edge.imported))
        and _rank(layer_of(edge.imported)) > _rank(layer_of(edge.importer))
    ]


@dataclass
class Report:
    problems: list[str]
    excused: list[str]
    fixed: list[str]


def check(edges: Sequence[Import], modules: Iterable[str]) -> Report:
    report = Report([], [], [])
    for module in sorted(modules):
        if layer_of(module) is None:
            report.problems.append(f"{module} is in no layer: place it in LAYERS")
    at_import = cycles(edges, frozenset({"module"}))
    at_run = cycles(edges, frozenset({"module", "function"}))
    seen_cycles: list[frozenset[str]] = []
    for component in at_run:
        how = (
            "module-level imports"
            if any(component <= other for other in at_import)
            else "closed only by an import inside a function"
        )
        text = f"import cycle ({how}): {' <-> '.join(sorted(component))}"
        known = next((k for k in KNOWN_CYCLES if component <= k), None)
        if known is None:
            report.problems.append(text)
        else:
            seen_cycles.append(known)
            report.excused.append(f"{text}\n    known: {KNOWN_CYCLES[known]}")
    for known, reason in KNOWN_CYCLES.items():
        if known not in seen_cycles:
            report.fixed.append(f"cycle {' <-> '.join(sorted(known))} is gone ({reason})")
    seen_upward: set[tuple[str, str]] = set()
    for edge in upward(edges):
        pair = (edge.importer, edge.imported)
        text = (
            f"{edge.importer} ({layer_of(edge.importer)}) imports {edge.imported} "
            f"({layer_of(edge.imported)}), line {edge.line}, {edge.kind}-level"
        )
        if pair in KNOWN_UPWARD:
            seen_upward.add(pair)
            report.excused.append(f"{text}\n    known: {KNOWN_UPWARD[pair]}")
        else:
            report.problems.append(text)
    for pair, reason in KNOWN_UPWARD.items():
        if pair not in seen_upward:
            report.fixed.append(f"upward import {pair[0]} -> {pair[1]} is gone ({reason})")
    return report


def print_graph(edges: Sequence[Import], root: Path) -> None:
    by_module: dict[str, list[Import]] = {name: [] for name in find_modules(root)}
    for edge in edges:
        by_module[edge.importer].append(edge)
    for name in sorted(by_module, key=lambda module: (_rank(layer_of(module)), module)):
        print(f"{name}  [{layer_of(name) or '?'}]")
        for edge in sorted(by_module[name], key=lambda e: (e.imported, e.line)):
            mark = "" if edge.kind == "module" else f"  ({edge.kind})"
            print(f"    -> {edge.imported}  [{layer_of(edge.imported) or '?'}]{mark}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--graph", action="store_true", help="print every module's imports")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root")
    args = parser.parse_args(argv)
    edges = build_graph(args.root)
    if args.graph:
        print_graph(edges, args.root)
        return 0
    modules = find_modules(args.root)
    report = check(edges, modules)
    for line in report.excused:
        print(f"allowed: {line}")
    for line in report.fixed:
        print(f"fixed: {line}")
    for line in report.problems:
        print(f"FAIL: {line}")
    verdict = "fail" if report.problems else "ok"
    counts = f"{len(modules)} modules, {len(edges)} imports, {len(report.problems)} problems"
    print(f"layers: {verdict}: {counts}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
