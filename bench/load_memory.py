"""``make bench-load-memory``: the loader's peak RSS for each Arrow memory pool.

One set of records is put on the broker of ``make kafka-up`` (``--bootstrap``), then
``plug-pipeline load --until-caught-up`` reads all of it, again and again, into a new
target each time (a lake with a SQLite catalog, or a DuckDB file), with
``ARROW_DEFAULT_MEMORY_POOL`` unset (the loader's own choice: malloc, chosen before
pyarrow is imported) or set to each of Arrow's bundled pools. The runs of each setting
alternate, so that a machine getting busier weighs on all of them alike. Prints each
run's peak RSS (VmHWM, read every 0.1 s) and seconds, then the median per setting.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid

from bench import load as bench_load
from bench.common import OUT, ROOT, log
from bench.e2e.procfs import vm_hwm_kb

POOLS = ("", "mimalloc", "jemalloc")  # "": the loader's own choice


def one_run(prefix: str, kind: str, pool: str, batch_rows: int) -> tuple[float, float]:
    """Peak RSS (MB) and seconds of one catch-up into a new target of ``kind``."""
    folder = OUT / f"memory-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    target = f"iceberg+sqlite:///{folder}/catalog.db" if kind == "iceberg" else str(folder / "w.db")
    env = {
        "PLUG_PIPELINE_PRIVACY_POLICY": "keep",
        **{k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"},
        "KAFKA_BOOTSTRAP_SERVERS": bench_load.Where.bootstrap,
        **({"ARROW_DEFAULT_MEMORY_POOL": pool} if pool else {}),
    }
    argv = [
        sys.executable, "-m", "pipeline", "load", "--to", target, "--topic-prefix", prefix,
        "--until-caught-up", "--batch-rows", str(batch_rows), "--group", folder.name,
    ]  # fmt: skip
    started = time.monotonic()
    with (folder.with_suffix(".log")).open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        peak = 0
        while process.poll() is None:
            peak = max(peak, vm_hwm_kb(process.pid))
            time.sleep(0.1)
    seconds = time.monotonic() - started
    shutil.rmtree(folder, ignore_errors=True)
    if process.returncode != 0:
        raise SystemExit(f"bench: the loader failed; see {folder.with_suffix('.log')}")
    return peak / 1024, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", default="iceberg,duckdb")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    args = parser.parse_args(argv)
    bench_load.Where.bootstrap = args.bootstrap
    OUT.mkdir(parents=True, exist_ok=True)
    prefix = bench_load.new_topics(6)
    try:
        producer = bench_load.producer()
        for record in bench_load.records(prefix, args.events):
            bench_load.send(producer, record)
        producer.flush(120)
        print("| target | ARROW_DEFAULT_MEMORY_POOL | peak RSS per run | median | seconds |")
        print("|---|---|---|---:|---|")
        for kind in args.targets.split(","):
            rows = 20_000 if kind == "iceberg" else 5_000  # each target's default batch
            runs: dict[str, list[tuple[float, float]]] = {pool: [] for pool in POOLS}
            for _ in range(args.rounds):
                for pool in POOLS:
                    runs[pool].append(one_run(prefix, kind, pool, rows))
                    log(f"{kind} {pool or '(unset)'}: {runs[pool][-1]}")
            for pool, found in runs.items():
                mbs = ", ".join(f"{mb:.0f}" for mb, _ in found)
                secs = ", ".join(f"{s:.1f}" for _, s in found)
                median = statistics.median(mb for mb, _ in found)
                name = pool or "unset (malloc)"
                print(f"| {kind} | {name} | {mbs} MB | {median:.0f} MB | {secs} |")
    finally:
        bench_load.delete_topics([prefix])
    return 0


if __name__ == "__main__":
    sys.exit(main())
