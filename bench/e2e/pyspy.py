"""py-spy on the ingress under closed-loop load, and a summary of where its time goes."""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, log
from bench.e2e.settings import CLIENT_CPU
from bench.e2e.targets import VENV_BIN, Target
from bench.e2e.wrk import Load


def run_profile(pid: int, target: Target, body: str, load: Load) -> int:
    """py-spy the server under closed-loop load: collapsed stacks, then a flame graph.

    Returns the 2xx answers wrk counted, which the row's check against Kafka adds up.
    """
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        spy = Path(shutil.which("py-spy") or "")
    if not spy.is_file():
        log("  profile skipped: py-spy not found (.venv/bin/pip install py-spy)")
        return 0
    seconds = load.durations.profile
    acked = 0
    for fmt, suffix in (("raw", "txt"), ("flamegraph", "svg")):
        log(f"  py-spy ({fmt}) for {seconds:g} s under wrk load")
        record = ["record", "--pid", str(pid), "--rate", "200", "--nonblocking"]
        dest = OUT / f"profile-{target.name}-{body}.{suffix}"
        record += ["--duration", f"{seconds:g}", "--format", fmt, "-o", str(dest)]
        spy_proc = subprocess.Popen(
            ["taskset", "-c", CLIENT_CPU, str(spy), *record],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # py-spy attaches to the server before the load starts
        acked += load.run_wrk(target, body, seconds + 1).ok_2xx
        _, err = spy_proc.communicate(timeout=60)
        if spy_proc.returncode:
            log(f"  py-spy failed: {err.decode(errors='replace').strip()[-300:]}")
    return acked


def profile_of(body: str) -> dict[str, Any] | None:
    """The summary of ``run_profile``'s recording for ``body``; None if it wrote none."""
    raw = OUT / f"profile-ingress-{body}.txt"
    if not raw.exists():
        return None
    summary = summarise_profile(raw)
    summary["body"] = body
    summary["svg"] = f"profile-ingress-{body}.svg"
    return summary


def summarise_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Self time by area, module and function from py-spy's collapsed stacks.

    A sample's area is that of its innermost frame outside the standard library, so
    time in ``asyncio.StreamWriter.write`` called by aiokafka counts for aiokafka; a
    sample whose only frames are the loop's (``run_app``) is the event loop itself
    (uvloop's C code, socket reads and writes of the HTTP side).
    """
    by_area: collections.Counter[str] = collections.Counter()
    by_module: collections.Counter[str] = collections.Counter()
    by_func: collections.Counter[str] = collections.Counter()
    total = 0
    frame_re = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [m for fr in stack.split(";") if (m := frame_re.match(fr.strip()))]
        if not frames:
            continue
        leaf = frames[-1]
        by_module[_module(leaf["file"])] += n
        by_func[f"{leaf['func']} ({_module(leaf['file'])})"] += n
        owner = next((m for m in reversed(frames) if not _stdlib(m["file"])), leaf)
        loop_leaf = leaf["func"] == "run_app" or leaf["file"].endswith(_LOOP_FILES)
        if loop_leaf or owner["file"].endswith(("pipeline/cli.py", "pipeline/serve.py")):
            by_area[_EVENT_LOOP] += n
        else:
            by_area[_area(owner["file"], owner["func"])] += n

    def pct(c: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / max(total, 1), 1)) for k, v in c.most_common(top)]

    return {
        "samples": total,
        "self_by_area": pct(by_area),
        "self_by_module": pct(by_module),
        "self_by_function": pct(by_func),
    }


_EVENT_LOOP = "event loop (uvloop C code: HTTP socket I/O, callbacks)"
_LOOP_FILES = ("asyncio/runners.py", "asyncio/base_events.py")


def _stdlib(file: str) -> bool:
    f = file.replace("\\", "/")
    if "site-packages" in f or "pipeline/" in f:
        return False
    first = f.split("/lib/python3.11/")[-1].lstrip("/").split("/")[0].removesuffix(".py")
    return first in sys.stdlib_module_names


def _module(file: str) -> str:
    file = file.replace("\\", "/")
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return file.removesuffix(".py")


def _area(file: str, func: str) -> str:
    f = file.replace("\\", "/")
    if "aiokafka" in f:
        return "aiokafka (producer, batching, Kafka I/O)"
    if "pipeline/ingest" in f or "pipeline/events" in f or "pipeline/plug" in f:
        return "pipeline decode + normalise (msgspec, orjson)"
    if "pipeline/route" in f or "pipeline/webhooks" in f:
        return "pipeline route"
    if "pipeline/http" in f:
        return "pipeline HTTP handler"
    if "pipeline/sink" in f:
        return "pipeline Kafka sink (timeouts, futures)"
    if "prometheus_client" in f or "pipeline/metrics" in f:
        return "metrics (prometheus_client)"
    if "aiohttp" in f or "multidict" in f or "yarl" in f:
        return "aiohttp (HTTP parsing, routing, responses)"
    return f"other ({_module(file)})"
