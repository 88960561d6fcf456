"""docs/architecture.md names every module of pipeline/ and every command, and nothing else."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pipeline import cli

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
# A module or package as the page names it: `pipeline/http/guard.py`, `pipeline/http/`.
NAMED = re.compile(r"`(pipeline/(?:[\w/]+\.py|(?:\w+/)*))`")


def _section(title: str) -> str:
    """The text of the page's ``## title`` section, up to the next of its level."""
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _modules() -> set[str]:
    """Every module of the package as the page names it; a package by its folder."""
    found: set[str] = set()
    for path in (ROOT / "pipeline").rglob("*.py"):
        relative = path.relative_to(ROOT)
        if path.name == "__init__.py":
            found.add(f"{relative.parent.as_posix()}/")
        else:
            found.add(relative.as_posix())
    return found


def _verbs_by_module() -> dict[str, str]:
    """Every verb of ``plug-pipeline``, with the path of the module that adds it."""
    found: dict[str, str] = {}
    for add_parser in cli.COMMANDS:
        sub = argparse.ArgumentParser().add_subparsers()
        add_parser(sub)
        path = add_parser.__module__.replace(".", "/") + ".py"
        found.update(dict.fromkeys(sub.choices, path))
    return found


def test_the_map_names_every_module_and_no_other() -> None:
    named = set(NAMED.findall(_section("Package map")))
    modules = _modules()
    assert sorted(modules - named) == [], "modules missing from docs/architecture.md"
    assert sorted(named - modules) == [], "docs/architecture.md names modules that do not exist"


def test_every_module_the_page_names_anywhere_exists() -> None:
    named = set(NAMED.findall(PAGE.read_text(encoding="utf-8")))
    assert named, "the page names no module"
    assert sorted(named - _modules()) == []


def test_every_command_is_listed_with_the_module_that_holds_it() -> None:
    rows = re.findall(r"^\| `([\w-]+)` \| `(pipeline/[\w/]+\.py)` \|$", _section("Commands"), re.M)
    listed = dict(rows)
    assert len(listed) == len(rows), "a command is listed twice"
    verbs = _verbs_by_module()
    assert set(verbs) == set(build_verbs())
    assert listed == verbs


def build_verbs() -> set[str]:
    """The verbs of the real parser, as ``plug-pipeline --help`` shows them."""
    parser = cli.build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_every_module_on_the_path_of_a_webhook_exists() -> None:
    named = re.findall(r"\b((?:\w+/)*\w+\.py)\b", _section("The path of a webhook"))
    assert len(named) > 10
    assert sorted(n for n in set(named) if not (ROOT / "pipeline" / n).is_file()) == []
