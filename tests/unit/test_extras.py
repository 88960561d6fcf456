"""The install's extras: the core CLI without them, and a clear error naming a missing one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pipeline.extras import EXTRAS, MissingExtra, missing

ROOT = Path(__file__).parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EVERY_OPTIONAL = sorted({m for modules in EXTRAS.values() for m in modules})

# Runs the CLI as if the extras were not installed: importing any of their modules fails
# the way it does where they are absent (before Python looks for them on disk).
# Each attempt is recorded and printed last on stderr: a caught ImportError shows too.
ABSENT = """
import atexit, sys
BLOCKED = set(sys.argv[1].split(","))
attempted = []
atexit.register(lambda: print("attempted:", ",".join(attempted), file=sys.stderr))

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            attempted.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
"""
WITHOUT_EXTRAS = ABSENT + "from pipeline.cli import main\nsys.exit(main(sys.argv[2:]))\n"
CHECK_WAREHOUSE = (
    ABSENT + "from pipeline.ops.doctor import check_warehouse\n"
    "print(check_warehouse(sys.argv[2], 1.0).line())\n"
)


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=;! ]", requirement, maxsplit=1)[0].lower()


def _distributions(extra: str) -> set[str]:
    """The packages an extra installs, its references to other extras followed."""
    found = set()
    for requirement in PYPROJECT["project"]["optional-dependencies"][extra]:
        if _name(requirement) == "plug-pipeline":
            for inner in requirement.partition("[")[2].rstrip("]").split(","):
                found |= _distributions(inner.strip())
        else:
            found.add(_name(requirement))
    return found


def test_the_extras_install_what_their_commands_import() -> None:
    for extra, modules in EXTRAS.items():
        assert _distributions(extra) == set(modules), extra
    assert _distributions("all") == set(EVERY_OPTIONAL)
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert core.isdisjoint(EVERY_OPTIONAL)


def test_make_install_takes_every_extra_and_the_image_none() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q -c constraints.txt -e '.[all,dev]'" in makefile
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ARG EXTRAS=""' in dockerfile
    assert 'pip install --no-cache-dir -c constraints.txt ".${EXTRAS:+[$EXTRAS]}"' in dockerfile


def _without(
    blocked: list[str], *argv: str, cwd: Path, script: str = WITHOUT_EXTRAS
) -> subprocess.CompletedProcess[str]:
    """The script run with these modules absent; its last stderr line names the imports
    of them that were attempted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUG_PIPELINE_")}
    return subprocess.run(
        [sys.executable, "-c", script, ",".join(blocked), *argv],
        cwd=cwd, env=env | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_the_cli_starts_without_any_extra(tmp_path: Path) -> None:
    result = _without(EVERY_OPTIONAL, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout
    assert result.stderr.splitlines() == ["attempted: "]  # not one of them was imported


@pytest.mark.parametrize(
    ("blocked", "argv", "extra"),
    [
        (["duckdb"], ["load", "--to", "x.duckdb"], "warehouse"),
        (["psycopg"], ["load", "--to", "postgresql://u@127.0.0.1:1/db"], "warehouse"),
        (["plotly"], ["report", "--from", "x.duckdb"], "report"),
        (["duckdb", "pyarrow"], ["report", "--from", "x.duckdb"], "report"),
    ],
)
def test_a_command_without_its_extra_says_which_one_and_exits_2(
    tmp_path: Path, blocked: list[str], argv: list[str], extra: str
) -> None:
    result = _without(blocked, *argv, cwd=tmp_path)
    assert result.returncode == 2
    command = argv[0]
    assert result.stderr.splitlines()[0] == (
        f"plug-pipeline {command} needs the {extra} extra: pip install 'plug-pipeline[{extra}]'"
    )
    assert len(result.stderr.splitlines()) == 2  # that line, then the attempts
    assert list(tmp_path.iterdir()) == []  # nothing opened nor written before the check


def test_doctor_names_the_missing_extra_of_the_warehouse_it_checks(tmp_path: Path) -> None:
    target = str(tmp_path / "x.duckdb")
    result = _without(["psycopg"], target, cwd=tmp_path, script=CHECK_WAREHOUSE)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert "fail" in line
    assert str(MissingExtra("load", "warehouse")) in line


def test_the_installed_extras_are_found_here() -> None:
    # the suite runs with every extra (make install): nothing is missing
    assert {extra: missing(extra) for extra in EXTRAS} == {extra: [] for extra in EXTRAS}
