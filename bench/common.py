"""What the benchmarks share: where they write, how they log, a percentile, the machine."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"  # gitignored: every figure a run writes, beside RESULTS.md's summary


def log(msg: str) -> None:
    """A progress line on stderr, so that stdout holds only the run's figures."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(ordered: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ``ordered`` (sorted), by nearest rank.

    A reading that was taken, never an interpolation between two: the p99 of 1,000
    round trips is the 990th slowest. NaN without readings.
    """
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what the platform module says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def versions(*distributions: str) -> dict[str, str]:
    """The installed version of each distribution named (those not installed left out)."""
    found = {}
    for name in distributions:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def machine() -> dict[str, Any]:
    """The machine a run's figures came from: CPU, cores, Python and kernel."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
