"""``plug-pipeline load``: the loader as a command, with its progress line and metrics."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from typing import TextIO

from aiokafka.errors import KafkaError
from prometheus_client import start_http_server

from pipeline import config as configuration
from pipeline.config import Config
from pipeline.errors import ConfigError, WarehouseError
from pipeline.extras import require
from pipeline.runtime import allocator
from pipeline.runtime.gc_settings import settle_gc
from pipeline.runtime.tasks import cancel
from pipeline.warehouse.address import kind_of
from pipeline.warehouse.batch import Limits
from pipeline.warehouse.loader import DEFAULT_GROUP, Loader, Options
from pipeline.warehouse.metrics import LoaderMetrics
from pipeline.warehouse.personal import check_keys
from pipeline.warehouse.target import open_target
from pipeline.warehouse.views import ViewSettings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 1
# The DuckDB writer thread takes the GIL back many times a batch (DuckDB's module takes it
# between the tasks of every query, to check for Ctrl-C) while the event loop decodes
# records, and each time it waited out the loop's switch interval (5 ms by default): in
# a replay the writer spent a third of its time waiting, and it is the loader's
# bottleneck. At 0.1 ms (and the collector settled) that wait per event fell from 19-21
# us to 10-13 us and the replay went from 14,700-15,700 to 16,400-20,500 events/s, three
# runs each in alternation (bench/RESULTS.md). PostgreSQL's writer, which formats its COPY
# rows in Python, showed no difference either way (three pairs in alternation: events/s
# and CPU per event of the loader and of the server within the runs' noise); one setting.
_SWITCH_INTERVAL_S = 0.0001
_KAFKA_FLAGS = ("bootstrap_servers", "topic_prefix")
# A lake commits a file per table and partition per batch, and each commit costs a
# metadata file, a manifest list and a manifest per table: batches of a few seconds keep
# the files fewer and larger (docs/lakehouse.md), at the price of that much freshness.
LAKE_LIMITS = Limits(rows=20_000, bytes=16 * 1024 * 1024, age_s=5.0)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "load", help="load every event into DuckDB, PostgreSQL or an Iceberg lake, exactly once"
    )
    p.add_argument(
        "--to",
        dest="warehouse",
        metavar="TARGET",
        help="a DuckDB file, a postgresql:// (postgres://) URL or an iceberg+... lake "
        "(PLUG_PIPELINE_WAREHOUSE; default plug.duckdb)",
    )
    p.add_argument(
        "--group",
        help=f"consumer group (default {DEFAULT_GROUP}; {DEFAULT_GROUP}-tenant-T with --tenant T)",
    )
    p.add_argument(
        "--tenant",
        help="write only this tenant's records (a tenant's own DuckDB file); the others are "
        "skipped, and their offsets advance all the same",
    )
    p.add_argument(
        "--until-caught-up",
        action="store_true",
        help="exit 0 once the end offsets seen at start are loaded",
    )
    p.add_argument("--include-raw", action="store_true", help="load plug.raw too (raw_webhook)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address of the metrics port (0.0.0.0 in a container, for Prometheus to scrape)",
    )
    p.add_argument(
        "--instance-id",
        help="static group membership: a restarted loader with the same id takes its "
        "partitions back without a rebalance",
    )
    p.add_argument(
        "--batch-rows",
        type=int,
        help=f"rows per transaction (default {Limits.rows:,}; a lake {LAKE_LIMITS.rows:,})",
    )
    p.add_argument(
        "--batch-bytes",
        type=int,
        help=f"record bytes per transaction (default {Limits.bytes:,}; a lake "
        f"{LAKE_LIMITS.bytes:,})",
    )
    p.add_argument(
        "--batch-age-s",
        type=float,
        help=f"longest a record waits (default {Limits.age_s:g}; a lake {LAKE_LIMITS.age_s:g})",
    )
    p.add_argument(
        "--dedup-hours",
        type=float,
        help="DuckDB and a lake: a redelivered event (same event_id) is dropped when it "
        "arrives within this many hours of its first delivery (default 24; a longer window "
        "makes every batch read more of each table). PostgreSQL drops a redelivery of any "
        "age",
    )
    p.add_argument(
        "--duckdb-memory-mb",
        type=int,
        help="DuckDB's memory limit in MB (default 40): more spills less of what is not "
        "checkpointed yet to a temporary file (less CPU per event) for as much more resident "
        "memory",
    )
    configuration.add_flags(p, *_KAFKA_FLAGS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = configuration.load(
        None, warehouse=args.warehouse, **configuration.flag_values(args, *_KAFKA_FLAGS)
    )
    # an unknown scheme is refused before anything else is read
    kind = kind_of(config.warehouse)
    require("load", "lake" if kind == "iceberg" else "warehouse")
    allocator.map_large_blocks()  # before the first batch: see pipeline/runtime/allocator.py
    if kind != "postgresql":
        allocator.arrow_from_malloc()  # before pyarrow's first import: see allocator.py
    check_keys(config)
    defaults = LAKE_LIMITS if kind == "iceberg" else Limits()
    limits = Limits(
        defaults.rows if args.batch_rows is None else args.batch_rows,
        defaults.bytes if args.batch_bytes is None else args.batch_bytes,
        defaults.age_s if args.batch_age_s is None else args.batch_age_s,
    )
    if limits.rows < 1 or limits.bytes < 1 or limits.age_s <= 0:
        raise ConfigError("batch limits must be positive")
    if args.dedup_hours is not None and args.dedup_hours < 0:
        raise ConfigError("--dedup-hours must not be negative")
    if args.duckdb_memory_mb is not None and args.duckdb_memory_mb < 16:
        raise ConfigError("--duckdb-memory-mb must be at least 16")
    if args.tenant is not None and not args.tenant:
        raise ConfigError("--tenant must name a tenant")
    options = Options(
        group=args.group or group_of(args.tenant),
        tenant=args.tenant,
        include_raw=args.include_raw,
        until_caught_up=args.until_caught_up,
        limits=limits,
        instance_id=args.instance_id,
    )
    metrics = LoaderMetrics()
    if args.metrics_port is not None:
        start_http_server(args.metrics_port, addr=args.metrics_host, registry=metrics.registry)
    progress = sys.stderr if sys.stderr.isatty() else None
    return asyncio.run(
        load(
            config,
            options,
            metrics,
            progress,
            dedup_hours=args.dedup_hours,
            duckdb_memory_mb=args.duckdb_memory_mb,
        )
    )


def group_of(tenant: str | None) -> str:
    """The default consumer group: a loader of one tenant has a group of its own, so that
    it does not share the partitions of the loader of every tenant, or of another's."""
    return DEFAULT_GROUP if tenant is None else f"{DEFAULT_GROUP}-tenant-{tenant}"


async def load(
    config: Config,
    options: Options,
    metrics: LoaderMetrics,
    progress: TextIO | None = None,
    dedup_hours: float | None = None,
    duckdb_memory_mb: int | None = None,
) -> int:
    """Run the loader until SIGTERM / SIGINT (or caught up); the exit code."""
    try:
        kpi = ViewSettings(config.kpi_time_zone, config.kpi_sla_seconds)
        target = open_target(config.warehouse, kpi, dedup_hours, duckdb_memory_mb)
    except WarehouseError as exc:
        print(f"plug-pipeline load: {exc}", file=sys.stderr)
        return EXIT_FAILED
    loader = Loader(config, target, options, metrics)
    settle_gc()  # the modules, settings and target exist; the consumer is made by run()
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loader.stop)
    reporter = asyncio.create_task(_report(loader, progress)) if progress else None
    log.info("loading %s into %s", config.topic_prefix, target.describe())
    try:
        await loader.run()
    except (WarehouseError, KafkaError) as exc:
        print(f"plug-pipeline load: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await cancel(reporter)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if progress:
            print(file=progress)
    skipped = f", {loader.skipped} of other tenants skipped" if options.tenant is not None else ""
    print(
        f"loaded {loader.loaded} records ({loader.rows} rows) into {target.describe()}{skipped}",
        file=sys.stderr,
    )
    return EXIT_OK


async def _report(loader: Loader, out: TextIO) -> None:
    """One line, rewritten every second: rows/s and lag per topic."""
    last_rows, last_t = loader.rows, time.monotonic()
    while True:
        await asyncio.sleep(1)
        # a broken terminal must not stop the load: the line is only a view
        with contextlib.suppress(Exception):
            now = time.monotonic()
            rate = (loader.rows - last_rows) / max(now - last_t, 1e-9)
            last_rows, last_t = loader.rows, now
            prefix = loader.config.topic_prefix + "."
            lag = sorted(loader.lag().items())
            shown = " ".join(f"{topic.removeprefix(prefix)}={n:,}" for topic, n in lag if n)
            out.write(f"\r{loader.loaded:,} records, {rate:,.0f} rows/s | lag {shown or '0'}\x1b[K")
            out.flush()
