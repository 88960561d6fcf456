"""``plug-pipeline lake maintain`` (compaction, expiry, orphans: ``maintain.py``) and
``lake views`` (the KPI views in Spark SQL)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from pipeline import config as configuration
from pipeline.errors import ConfigError, WarehouseError
from pipeline.extras import require
from pipeline.lake.retention import KEEP, MIN_FILES, ORPHAN_AGE
from pipeline.warehouse.address import kind_of
from pipeline.warehouse.views import spark_statements

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("lake", help="the Iceberg lake's upkeep (load --to iceberg+...)")
    actions = p.add_subparsers(dest="action", required=True)
    m = actions.add_parser(
        "maintain",
        help="compact small files, expire old snapshots, remove orphan files",
        description="Safe while loaders write: a compaction that loses its commit to a "
        "loader's is left for the next run.",
    )
    m.add_argument(
        "--at",
        dest="lake",
        metavar="TARGET",
        help="the iceberg+... address the loader writes to (PLUG_PIPELINE_WAREHOUSE)",
    )
    m.add_argument(
        "--min-files",
        type=int,
        default=MIN_FILES,
        help=f"compact a partition holding this many small files or more (default {MIN_FILES})",
    )
    m.add_argument(
        "--keep-hours",
        type=float,
        default=KEEP.total_seconds() / 3600,
        help="expire snapshots older than this (default 24): time travel reaches back as "
        "far, and erased rows stay in the files of older snapshots until then",
    )
    m.add_argument(
        "--orphan-minutes",
        type=float,
        default=ORPHAN_AGE.total_seconds() / 60,
        help="remove unreferenced files older than this (default 60): longer than any write",
    )
    for step in ("compact", "expire", "orphans"):
        m.add_argument(f"--no-{step}", action="store_true", help=f"skip the {step} step")
    m.set_defaults(func=run)
    v = actions.add_parser(
        "views",
        help="print the KPI views in Spark SQL, for a Spark session reading the lake",
        description="Temporary views over the tables of the session's current namespace "
        "(USE <catalog>.<namespace> first), with PLUG_PIPELINE_KPI_TIME_ZONE and "
        "PLUG_PIPELINE_KPI_SLA_SECONDS.",
    )
    v.set_defaults(func=print_views)


def print_views(args: argparse.Namespace) -> int:
    config = configuration.load(None)
    try:
        sql = spark_statements(config.kpi_time_zone, config.kpi_sla_seconds)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    print("-- The KPI views of docs/analytics.md in Spark SQL (plug-pipeline lake views).")
    for statement in sql:
        print(statement.rstrip() + ";\n")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    config = configuration.load(None, warehouse=args.lake)
    if kind_of(config.warehouse) != "iceberg":
        raise ConfigError("lake maintain needs an iceberg+... address (--at)")
    require("lake", "lake")
    if args.min_files < 2 or args.keep_hours < 0 or args.orphan_minutes < 1:
        raise ConfigError("--min-files >= 2, --keep-hours >= 0 and --orphan-minutes >= 1")
    from pipeline.lake.catalog import open_catalog, parse
    from pipeline.lake.maintain import maintain

    address = parse(config.warehouse)
    try:
        catalog = open_catalog(address)
        outcomes = maintain(
            catalog,
            address.namespace,
            compact=not args.no_compact,
            expire=not args.no_expire,
            orphans=not args.no_orphans,
            min_files=args.min_files,
            keep=dt.timedelta(hours=args.keep_hours),
            orphan_age=dt.timedelta(minutes=args.orphan_minutes),
        )
    except WarehouseError as exc:
        print(f"plug-pipeline lake maintain: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for outcome in outcomes:
        print(outcome.line())
    return EXIT_OK
