"""The Go peer's build cache key and its error without Go (bench/e2e/gopeer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.e2e import gopeer


def sources(folder: Path, main: str) -> list[Path]:
    (folder / "go.mod").write_text("module example/peer\n\ngo 1.22\n")
    (folder / "main.go").write_text(main)
    (folder / "notes.txt").write_text("not built from")
    return gopeer.sources(folder)


def test_the_sources_are_the_go_files_and_the_module_files(tmp_path: Path) -> None:
    found = sources(tmp_path, "package main\n")
    assert [p.name for p in found] == ["go.mod", "main.go"]


def test_the_key_changes_with_a_source_or_the_toolchain(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    first = gopeer.cache_key(sources(a, "package main\n"), "go1.26.8")
    assert gopeer.cache_key(sources(a, "package main\n"), "go1.26.8") == first
    assert gopeer.cache_key(sources(b, "package main\n\n"), "go1.26.8") != first
    assert gopeer.cache_key(sources(a, "package main\n"), "go1.27.0") != first


def test_without_go_the_error_says_how_to_leave_the_row_out(tmp_path: Path) -> None:
    sources(tmp_path, "package main\n")
    with pytest.raises(gopeer.BuildError, match="--targets ingress,ceiling,handwritten"):
        gopeer.build(tmp_path, tmp_path / "cache", go=str(tmp_path / "no-such-go"))
    assert not (tmp_path / "cache").exists()
