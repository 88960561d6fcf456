"""``make bench-load``: the warehouse loader's throughput, freshness and memory.

Against this run's own Kafka (``127.0.0.1:19092``, as ``make bench``; or a running one with
``--bootstrap``, as ``make bench-load`` passes ``KAFKA_PORT``'s) and the local PostgreSQL
(``PLUG_PIPELINE_TEST_PG_URL``, from ``make pg-up``; a database of the run's own), for each
target:

- replay: ``--events`` records pre-filled on the event topics, then ``plug-pipeline load
  --until-caught-up``; events/s and rows/s over the time the loader was committing
  (from its first committed batch to its last, read off its metrics every 0.2 s), and the
  whole run's wall time;
- live: the loader running at its defaults while records are produced at ``--rate`` for
  ``--seconds``; freshness (Kafka timestamp -> committed row) p50 / p99 from the
  loader's ``plug_loader_freshness_seconds`` histogram, interpolated within buckets;
- peak RSS of the loader process (its ``VmHWM``, read while it runs);
- the rows in the warehouse after each run, counted with a client of the bench's own;
- for a lake (``iceberg``: a SQLite catalog and local files), the data files of each
  table after the live run, and after ``plug-pipeline lake maintain`` on it.

Records are what the ingress publishes for the simulator's bodies (one tenant per copy,
so every event id is distinct), produced with librdkafka in lz4 as the ingress's default
compresses them. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import duckdb
import psycopg
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bench import histogram
from bench.common import OUT, ROOT, log
from bench.e2e.broker import BOOTSTRAP, Broker
from bench.e2e.procfs import vm_hwm_kb
from pipeline import ingest
from pipeline.errors import Malformed
from pipeline.lake import catalog as lake_catalog
from pipeline.lake import read as lake_read
from pipeline.lake.maintain import data_files
from pipeline.record import Record
from pipeline.runtime.metrics import samples
from pipeline.simulate.generator import Generator
from pipeline.warehouse.sql import q
from pipeline.warehouse.tables import LOADED_TABLES
from pipeline.webhooks import all_topics

PG_URL = os.environ.get("PLUG_PIPELINE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:55432/plug")
METRICS_PORT = 19400


class Where:
    """The broker and metrics port of this run (set from the flags by ``main``)."""

    bootstrap = BOOTSTRAP
    metrics_port = METRICS_PORT
    # Topic prefixes made for the target and mode being measured, deleted once it is
    # measured (``--keep`` keeps them): on the broker of `make kafka-up`, which outlives
    # the run, each run left about half a GB of records behind.
    made: ClassVar[list[str]] = []


@dataclass
class Result:
    target: str
    mode: str
    events: int
    rows: int
    seconds: float
    events_per_s: float
    rows_per_s: float
    wall_s: float
    p50_s: float = math.nan
    p99_s: float = math.nan
    rss_mb: float = math.nan


def records(prefix: str, n: int, seed: int = 5) -> list[Record]:
    items = Generator(seed).take(min(n, 20000))
    out = []
    for i, (webhook, body) in zip(range(n), itertools.cycle(items)):
        try:
            out.append(ingest.ingest(webhook, f"t{i // len(items)}", body, 0, prefix))
        except Malformed as exc:
            out.append(ingest.deadletter(webhook, "t", body, 0, prefix, exc))
    return out


def new_topics(partitions: int) -> str:
    prefix = f"bl{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": Where.bootstrap})
    futures = admin.create_topics([NewTopic(t, partitions, 1) for t in all_topics(prefix)])
    for future in futures.values():
        future.result(timeout=30)
    Where.made.append(prefix)
    return prefix


def delete_topics(prefixes: list[str]) -> None:
    if not prefixes:
        return
    admin = AdminClient({"bootstrap.servers": Where.bootstrap})
    names = [t for prefix in prefixes for t in all_topics(prefix)]
    for future in admin.delete_topics(names, operation_timeout=30).values():
        future.result(timeout=60)


def producer() -> Producer:
    # lz4, as the ingress writes by default (config.compression): the loader's fetches
    # are then what it reads in production, decompression included
    return Producer(
        {
            "bootstrap.servers": Where.bootstrap,
            "linger.ms": 5,
            "enable.idempotence": True,
            "compression.type": "lz4",
        }
    )


def list_headers(r: Record) -> list[tuple[str, str | bytes | None]]:
    return list(r.headers)


def send(p: Producer, r: Record) -> None:
    while True:
        try:
            p.produce(r.topic, r.value, r.key, headers=list_headers(r))
            return
        except BufferError:
            p.poll(0.05)


def scrape() -> dict[str, float]:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{Where.metrics_port}/metrics", timeout=2
        ) as r:
            text = r.read().decode()
    except OSError:
        return {}
    return samples(text)


def total(figures: dict[str, float], name: str) -> float:
    return sum(v for k, v in figures.items() if k == name or k.startswith(name + "{"))


def quantile(figures: dict[str, float], q: float) -> float:
    """Prometheus' histogram_quantile over plug_loader_freshness_seconds (nan: none yet)."""
    found = histogram.quantile(histogram.buckets(figures, "plug_loader_freshness_seconds"), q)
    return math.nan if found is None else found


def start_loader(prefix: str, target: str, *args: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "pipeline", "load", "--to", target, "--topic-prefix", prefix]
    # the bench measures the load path as it was (policy keep) unless the caller sets one
    env = {
        "PLUG_PIPELINE_PRIVACY_POLICY": "keep",
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": Where.bootstrap,
    }
    log_file = (OUT / f"load-{prefix}.log").open("ab")
    cmd += ["--metrics-port", str(Where.metrics_port), *args]
    return subprocess.Popen(cmd, env=env, stdout=log_file, stderr=log_file, cwd=ROOT)


class Peak:
    """The loader's peak RSS: VmHWM, read while it runs. (Its ru_maxrss would start at this
    process's own size, inherited at fork, and this process holds every record it sends.)"""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.kb = 0

    def read(self) -> None:
        self.kb = max(self.kb, vm_hwm_kb(self.process.pid))

    @property
    def mb(self) -> float:
        return self.kb / 1024


def done(process: subprocess.Popen[bytes], block: bool = True) -> bool:
    """Whether the loader has exited (failing the run if it failed)."""
    if process.poll() is None and not block:
        return False
    if process.wait() != 0:
        raise SystemExit(f"bench: the loader failed ({process.returncode}); see bench/out/")
    return True


def warehouse_rows(target: str) -> int:
    """Rows in the tables the loader writes, counted by a client of the bench's own."""
    sql = "SELECT " + " + ".join(f"(SELECT count(*) FROM {q(t.name)})" for t in LOADED_TABLES)
    if target.startswith("iceberg+"):
        with lake_read.connect(target, views=False) as con:
            row = con.execute(sql).fetchone()
    elif target.startswith("postgresql://"):
        with psycopg.connect(target) as conn:
            row = conn.execute(sql.encode()).fetchone()
    else:
        with duckdb.connect(target, read_only=True) as con:
            row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def replay(kind: str, target: str, n: int) -> Result:
    prefix = new_topics(6)
    p = producer()
    for r in records(prefix, n):
        send(p, r)
    p.flush(120)
    log(f"{kind}: {n} records pre-filled on {prefix}.*, loading")
    started = time.monotonic()
    process = start_loader(prefix, target, "--until-caught-up")
    samples: list[tuple[float, float, float]] = []  # time, events, rows
    peak = Peak(process)
    while True:
        peak.read()
        if done(process, block=False):
            break
        figures = scrape()
        if figures:
            samples.append(
                (
                    time.monotonic(),
                    total(figures, "plug_loader_events_total"),
                    total(figures, "plug_loader_rows_total"),
                )
            )
        time.sleep(0.2)
    wall = time.monotonic() - started
    moving = [s for s in samples if s[1] > 0]
    first, last = moving[0], moving[-1]
    seconds = max(last[0] - first[0], 1e-9)
    events, rows = last[1] - first[1], last[2] - first[2]
    return Result(kind, "replay", n, warehouse_rows(target), seconds, events / seconds,
                  rows / seconds, wall, rss_mb=peak.mb)  # fmt: skip


class Upkeep:
    """``plug-pipeline lake maintain`` every ``every_s`` while the loader writes, as an
    operator's schedule would run it (snapshots kept ``keep_hours``)."""

    def __init__(self, target: str, every_s: float, keep_hours: float) -> None:
        self.target, self.every_s, self.keep_hours = target, every_s, keep_hours
        self.next = time.monotonic() + every_s
        self.runs: list[float] = []  # seconds each took
        self.running: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def poll(self) -> None:
        """Start a run when one is due and none is running; note a finished one."""
        if self.running is not None:
            if self.running.poll() is None:
                return
            if self.running.returncode != 0:
                raise SystemExit("bench: lake maintain failed while the loader wrote")
            self.runs.append(time.monotonic() - self.started)
            self.running = None
        if time.monotonic() >= self.next:
            self.next += self.every_s
            self.started = time.monotonic()
            self.running = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "lake", "maintain", "--at", self.target,
                 "--keep-hours", f"{self.keep_hours:g}"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def finish(self) -> None:
        if self.running is not None:
            self.running.wait()
            self.running = None
            self.runs.append(time.monotonic() - self.started)


def live(kind: str, target: str, rate: int, seconds: float, upkeep: Upkeep | None = None) -> Result:
    prefix = new_topics(6)
    pool = records(prefix, int(rate * seconds))
    process = start_loader(prefix, target)
    while not scrape():
        time.sleep(0.1)
    time.sleep(3)  # let the loader join its group before traffic starts
    log(f"{kind}: producing {rate}/s for {seconds:.0f} s")
    p = producer()
    peak = Peak(process)
    started = time.monotonic()
    for i, r in enumerate(pool):
        if i % 1000 == 0:
            peak.read()
            if upkeep is not None:
                upkeep.poll()
        due = started + i / rate
        # librdkafka's poll timeout is whole milliseconds: waiting for each record's own
        # time (0.2 ms apart at 5,000/s) was poll(0) in a loop, a core spinning beside the
        # loader; records go out up to 1 ms early instead
        while (wait := due - time.monotonic()) >= 0.001:
            p.poll(wait)
        send(p, r)
    p.flush(60)
    sent = time.monotonic() - started
    deadline = time.monotonic() + 120
    while total(scrape(), "plug_loader_events_total") < len(pool):
        peak.read()
        if time.monotonic() > deadline:
            raise SystemExit("bench: the live records were not all loaded within 120 s")
        time.sleep(0.2)
    figures = scrape()
    peak.read()
    process.send_signal(signal.SIGTERM)
    done(process)
    mode = f"live {rate}/s"
    if upkeep is not None:
        upkeep.finish()
        took = max(upkeep.runs, default=0.0)
        mode += (
            f", lake maintain every {upkeep.every_s:g} s ({len(upkeep.runs)} runs, <= {took:.0f} s)"
        )
    rows = warehouse_rows(target)
    return Result(kind, mode, len(pool), rows, sent, len(pool) / sent, rows / sent,
                  sent, quantile(figures, 0.5), quantile(figures, 0.99), peak.mb)  # fmt: skip


@dataclass
class Files:
    """A lake's data files per table, after a live run and after ``lake maintain``."""

    mode: str
    seconds: float
    before: dict[str, int]
    after: dict[str, int]
    maintain_s: float


def lake_files(target: str) -> dict[str, int]:
    """Each table's data files in its current snapshot (the tables with any)."""
    address = lake_catalog.parse(target)
    catalog = lake_catalog.open_catalog(address)
    try:
        found = {}
        for t in LOADED_TABLES:
            n = len(data_files(catalog.load_table(address.identifier(t.name))))
            if n:
                found[t.name] = n
        return found
    finally:
        catalog.engine.dispose()


def maintained(target: str, mode: str, seconds: float) -> Files:
    """Files before and after ``plug-pipeline lake maintain`` (the loader has stopped:
    snapshots expired at once)."""
    before = lake_files(target)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pipeline", "lake", "maintain", "--at", target, "--keep-hours",
         "0"],
        check=True, cwd=ROOT, capture_output=True,
    )  # fmt: skip
    return Files(mode, seconds, before, lake_files(target), time.monotonic() - started)


def files_table(found: list[Files]) -> str:
    lines = [
        "| lake after | seconds of traffic | data files (all tables) | most in one table "
        "| after lake maintain | most in one table | maintain took |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for f in found:
        lines.append(
            f"| {f.mode} | {f.seconds:.0f} | {sum(f.before.values()):,} | "
            f"{max(f.before.values(), default=0):,} | {sum(f.after.values()):,} | "
            f"{max(f.after.values(), default=0):,} | {f.maintain_s:.1f} s |"
        )
    return "\n".join(lines)


def pg_database() -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)".encode())


def table(results: list[Result]) -> str:
    lines = [
        "| target | mode | events | rows | events/s | rows/s | p50 fresh | p99 fresh | peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.mode} | {r.events:,} | {r.rows:,} | {r.events_per_s:,.0f} | "
            f"{r.rows_per_s:,.0f} | {r.p50_s:.2f} s | {r.p99_s:.2f} s | {r.rss_mb:.0f} MB |"
        )
    return "\n".join(lines).replace("nan s", "-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000, help="records to replay")
    parser.add_argument("--rate", type=int, default=5000, help="live records per second")
    parser.add_argument("--seconds", type=float, default=20, help="live duration")
    parser.add_argument("--targets", default=DEFAULT_TARGETS)
    parser.add_argument(
        "--maintain-every",
        type=float,
        default=0,
        help="a lake: run `lake maintain` every this many seconds of the live run (0: never)",
    )
    parser.add_argument(
        "--maintain-keep-hours", type=float, default=1.0, help="its --keep-hours (default 1)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the broker's data and the run's topics"
    )
    parser.add_argument(
        "--bootstrap", help="a running broker to use (default: start this run's own on 19092)"
    )
    parser.add_argument("--metrics-port", type=int, default=METRICS_PORT, help="the loader's")
    args = parser.parse_args(argv)
    Where.metrics_port = args.metrics_port
    if args.bootstrap:
        Where.bootstrap = args.bootstrap
    OUT.mkdir(parents=True, exist_ok=True)
    load_at_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    results = []
    files: list[Files] = []
    with contextlib.nullcontext() if args.bootstrap else Broker(args.keep):
        for kind in args.targets.split(","):
            for mode in ("replay", "live"):
                lake_dir = OUT / f"lake-{uuid.uuid4().hex[:6]}"
                if kind == "duckdb":
                    target = str(OUT / f"bench-{uuid.uuid4().hex[:6]}.duckdb")
                elif kind == "iceberg":
                    target = f"iceberg+sqlite:///{lake_dir}/catalog.db"
                else:
                    target = pg_database()
                try:
                    if mode == "replay":
                        results.append(replay(kind, target, args.events))
                    else:
                        upkeep = (
                            Upkeep(target, args.maintain_every, args.maintain_keep_hours)
                            if kind == "iceberg" and args.maintain_every
                            else None
                        )
                        results.append(live(kind, target, args.rate, args.seconds, upkeep))
                    log(str(results[-1]))
                    if kind == "iceberg":
                        files.append(maintained(target, mode, results[-1].wall_s))
                        log(str(files[-1]))
                finally:
                    if kind == "iceberg":
                        shutil.rmtree(lake_dir, ignore_errors=True)
                    elif kind == "duckdb":
                        Path(target).unlink(missing_ok=True)
                        Path(target + ".wal").unlink(missing_ok=True)
                    else:
                        drop_database(target)
                    if not args.keep:
                        delete_topics(Where.made)
                        Where.made.clear()
    print(table(results))
    if files:
        print()
        print(files_table(files))
    (OUT / "load.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    write_results(results, files, args, load_at_start)
    return 0


START, END = "<!-- bench-load:start -->", "<!-- bench-load:end -->"
DEFAULT_TARGETS = "duckdb,postgresql,iceberg"


def markers(targets: str) -> tuple[str, str]:
    """The section's markers: a run of some targets only has a section of its own, so it
    does not replace the figures of the others."""
    if targets == DEFAULT_TARGETS:
        return START, END
    return f"<!-- bench-load[{targets}]:start -->", f"<!-- bench-load[{targets}]:end -->"


def write_results(
    results: list[Result], files: list[Files], args: argparse.Namespace, load: str
) -> None:
    """This run's section of bench/RESULTS.md, replaced in place (the rest is kept)."""
    # a run with upkeep has a section of its own, beside the run without
    which = args.targets + (
        f", lake maintain every {args.maintain_every:g} s" if args.maintain_every else ""
    )
    start, end = markers(which)
    title = "" if which == DEFAULT_TARGETS else f", {which}"
    section = "\n".join(
        [
            start,
            f"## Warehouse loader (`make bench-load`{title})",
            "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
            f"- command: `.venv/bin/python -m bench.load --events {args.events} --rate "
            f"{args.rate} --seconds {args.seconds:g} --targets {args.targets}"
            + (f" --maintain-every {args.maintain_every:g}" if args.maintain_every else "")
            + (f" --bootstrap {args.bootstrap}`" if args.bootstrap else "`"),
            f"- machine: {os.cpu_count()} cores, load average at start {load}",
            f"- Kafka 4.3.1 single node at {Where.bootstrap} (6 partitions a topic); PostgreSQL 15",
            "  from `make pg-up`;",
            "  loader defaults (5,000 rows / 8 MiB / 1 s batches; a lake 20,000 / 16 MiB / 5 s);",
            "  targets: >= 20,000 events/s,",
            "  p99 freshness <= 2 s, RSS <= 256 MB",
            "",
            table(results),
            "",
            "Records in lz4, as the ingress writes them. Events/s and rows/s over the",
            "committing part of the run (replay) or over the producing time (live); rows as",
            "counted in the warehouse afterwards; freshness from the loader's histogram; RSS",
            "is its VmHWM.",
            *(
                [
                    "",
                    "A lake (`iceberg`: SQLite catalog, local files) at the loader's lake",
                    "defaults (20,000 rows / 16 MiB / 5 s batches); its data files per table",
                    "in the current snapshots after each run, then after `plug-pipeline lake",
                    "maintain --keep-hours 0`:",
                    "",
                    files_table(files),
                ]
                if files
                else []
            ),
            end,
        ]
    )
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text()
    if start in text:
        head, _, rest = text.partition(start)
        text = head + section + rest.partition(end)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
