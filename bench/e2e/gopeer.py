"""The Go peer's binary (``bench/baselines/gopeer/``), built with the machine's Go.

``go build`` fetches franz-go through the Go module proxy, checked against the committed
``go.sum`` (``-mod=readonly``: the build never rewrites the module files). The binary is
kept in ``bench/out/gopeer/`` under a name made from its sources' hash and Go's version,
so a second run does not build again and a changed source or toolchain does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from bench.common import BENCH, OUT, log

SOURCE = BENCH / "baselines" / "gopeer"
CACHE = OUT / "gopeer"


class BuildError(RuntimeError):
    """The Go peer could not be built; the message says why and what to do."""


def sources(folder: Path = SOURCE) -> list[Path]:
    """The files the binary is built from, in a stable order."""
    built_from = ("go.mod", "go.sum")
    return sorted(p for p in folder.iterdir() if p.suffix == ".go" or p.name in built_from)


def cache_key(files: list[Path], go_version: str) -> str:
    """A short hash of the sources' names and bytes and of the Go that builds them."""
    h = hashlib.sha256(go_version.encode())
    for p in files:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def go_version(go: str) -> str:
    out = subprocess.run([go, "version"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BuildError(f"`{go} version` failed: {out.stderr.strip()[-500:]}")
    return out.stdout.strip()


def build(folder: Path = SOURCE, cache: Path = CACHE, go: str | None = None) -> Path:
    """The Go peer's binary, built now unless a build of the same sources is cached.

    ``go``: the Go command to build with (default: ``go`` on PATH).
    """
    go = shutil.which(go or "go")
    if go is None:
        raise BuildError(
            "the Go peer needs Go (`go` on PATH) to build bench/baselines/gopeer/; install "
            "Go, or leave the row out: --targets ingress,ceiling,handwritten"
        )
    version = go_version(go)
    binary = cache / f"gopeer-{cache_key(sources(folder), version)}"
    if binary.exists():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    log(f"building the Go peer with {version}")
    env = dict(os.environ, GOFLAGS="-mod=readonly", CGO_ENABLED="0")
    cmd = [go, "build", "-trimpath", "-o", str(partial), "."]
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(
            f"the Go peer did not build (`{' '.join(cmd)}` in {folder}, exit "
            f"{proc.returncode}): {proc.stderr.strip()[-1500:]}\nleave the row out with "
            "--targets ingress,ceiling,handwritten"
        )
    partial.rename(binary)  # whole or not at all: a cut build is never taken for a binary
    return binary
