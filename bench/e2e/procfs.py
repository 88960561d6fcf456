"""What ``/proc`` says about a process tree and the machine: CPU time, steal, peak RSS."""

from __future__ import annotations

import collections
import contextlib
import os
import time
from pathlib import Path


def proc_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants, in seconds.

    A process's ``/proc/<pid>/stat`` already sums all its threads (live and exited), so
    the tree covers aiokafka's and the loop's threads and ``--workers`` children alike.
    Resolution is one clock tick (10 ms at 100 Hz) per process and reading.
    """
    ticks = 0
    for p in proc_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / CLOCK_TICKS


def steal_seconds() -> float:
    """CPU time the hypervisor gave to others, summed over this machine's CPUs (``steal``)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / CLOCK_TICKS if len(fields) > 8 else 0.0


def stolen_since(steal_before: float, started: float) -> float:
    """The share of the machine's CPU time stolen since ``steal_seconds()`` read
    ``steal_before`` at ``time.monotonic()`` ``started``."""
    elapsed = time.monotonic() - started
    return (steal_seconds() - steal_before) / (elapsed * (os.cpu_count() or 1))


def vm_hwm_kb(pid: int) -> int:
    """Peak RSS (VmHWM) of ``pid`` and its descendants, summed (workers are processes)."""
    total = 0
    for p in proc_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total
