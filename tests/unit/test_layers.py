"""tools/layers.py: the imports of pipeline/ form no cycle and point down the layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools import layers

ROOT = Path(__file__).resolve().parents[2]


def _tree(root: Path, modules: dict[str, str]) -> Path:
    """A package ``pipeline`` under ``root`` with the given modules' sources."""
    for name, source in modules.items():
        path = root / Path(*name.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            if parent != Path("."):
                (root / parent / "__init__.py").touch()
        path.write_text(source, encoding="utf-8")
    return root


def _check(root: Path) -> layers.Report:
    return layers.check(layers.build_graph(root), layers.find_modules(root))


def test_the_project_passes() -> None:
    report = _check(ROOT)
    assert report.problems == []


def test_make_layers_command_exits_0_on_the_project() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "layers.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "layers: ok" in done.stdout


def test_every_module_of_the_project_has_a_layer() -> None:
    unplaced = [m for m in layers.find_modules(ROOT) if layers.layer_of(m) is None]
    assert unplaced == []


def test_an_upward_import_fails_naming_both_modules(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"pipeline.errors": "from pipeline import app\n", "pipeline.app": ""})
    report = _check(root)
    assert len(report.problems) == 1
    assert "pipeline.errors (vocabulary) imports pipeline.app (process)" in report.problems[0]


def test_an_import_inside_a_function_counts(tmp_path: Path) -> None:
    source = "def f() -> None:\n    from pipeline.serve import main\n"
    root = _tree(tmp_path, {"pipeline.route": source, "pipeline.serve": "main = 1\n"})
    (problem,) = _check(root).problems
    assert "pipeline.route (core) imports pipeline.serve (process)" in problem
    assert "function-level" in problem


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"pipeline.http.a": "from ..serve import x\n", "pipeline.serve": ""})
    (problem,) = _check(root).problems
    assert "pipeline.http.a (stages) imports pipeline.serve (process)" in problem


def test_a_module_level_cycle_fails(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "pipeline.sink.a": "from pipeline.sink import b\n",
            "pipeline.sink.b": "import pipeline.sink.a\n",
        },
    )
    (problem,) = _check(root).problems
    assert problem == "import cycle (module-level imports): pipeline.sink.a <-> pipeline.sink.b"


def test_a_cycle_closed_inside_a_function_fails_and_says_so(tmp_path: Path) -> None:
    late = "def f() -> None:\n    from pipeline.spool import x\n"
    root = _tree(
        tmp_path, {"pipeline.spool.x": "from pipeline.spool import y\n", "pipeline.spool.y": late}
    )
    (problem,) = _check(root).problems
    assert "closed only by an import inside a function" in problem
    assert "pipeline.spool.x <-> pipeline.spool.y" in problem


def test_type_only_imports_make_no_cycle_but_still_point_down(tmp_path: Path) -> None:
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pipeline import {}\n"
    root = _tree(
        tmp_path,
        {
            "pipeline.errors": typed.format("record"),
            "pipeline.record": "from pipeline import errors\n",
            "pipeline.config": typed.format("app"),
            "pipeline.app": "",
        },
    )
    (problem,) = _check(root).problems
    assert "pipeline.config (vocabulary) imports pipeline.app (process)" in problem
    assert "type-level" in problem


def test_a_known_cycle_is_allowed_and_reported_fixed_once_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = "pipeline.warehouse.one", "pipeline.warehouse.two"
    monkeypatch.setattr(layers, "KNOWN_CYCLES", {frozenset({first, second}): "a reason"})
    cyclic = _tree(
        tmp_path / "before",
        {first: f"import {second}\n", second: f"import {first}\n"},
    )
    before = _check(cyclic)
    assert before.problems == []
    assert any(f"{first} <-> {second}" in line for line in before.excused)
    assert before.fixed == []
    acyclic = _tree(tmp_path / "after", {first: f"import {second}\n", second: ""})
    after = _check(acyclic)
    assert after.problems == []
    assert len(after.fixed) == 1


def test_a_module_in_no_layer_fails(tmp_path: Path) -> None:
    (problem,) = _check(_tree(tmp_path, {"pipeline.newcomer": ""})).problems
    assert problem == "pipeline.newcomer is in no layer: place it in LAYERS"


def test_every_command_module_is_a_command_whatever_its_package() -> None:
    assert layers.layer_of("pipeline.warehouse.command") == "commands"
    assert layers.layer_of("pipeline.warehouse.loader") == "stages"
