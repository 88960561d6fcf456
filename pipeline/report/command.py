"""``plug-pipeline report --from TARGET --out FILE``: the contact-centre report as HTML."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from pipeline import config as configuration
from pipeline.errors import ConfigError
from pipeline.extras import require
from pipeline.report import queries
from pipeline.report.model import Filters
from pipeline.report.numbers import LOCALES, NumberFormat
from pipeline.report.source import open_source
from pipeline.warehouse.address import kind_of
from pipeline.warehouse.views import ViewSettings


def _day(text: str) -> dt.date:
    try:
        return queries.parse_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from exc


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "report",
        help="write the contact-centre report (one self-contained HTML file)",
        description="Read the warehouse's KPI views and write an HTML report that opens "
        "offline on a phone or a desktop.",
    )
    parser.add_argument(
        "--from",
        dest="source",
        default=None,
        help="DuckDB file, postgresql:// URL or iceberg+... lake (default: "
        "PLUG_PIPELINE_WAREHOUSE, else plug.duckdb)",
    )
    parser.add_argument("--out", default="report.html", help="file to write")
    parser.add_argument("--since", type=_day, help="first day (YYYY-MM-DD, local), included")
    parser.add_argument("--until", type=_day, help="last day (YYYY-MM-DD, local), included")
    parser.add_argument("--tenant", help="only this tenant (default: all)")
    parser.add_argument(
        "--locale", choices=LOCALES, default="en", help="number format (default: en)"
    )
    parser.set_defaults(func=run)


def write_report(
    source_target: str,
    out: Path,
    filters: Filters,
    fmt: NumberFormat,
    view_settings: ViewSettings | None = None,
) -> Path:
    """Query the warehouse, render, and replace ``out`` whole (never a half-written file)."""
    # here, not at the top: the page draws with plotly, which a core install lacks, and
    # the CLI imports this module for every command
    from pipeline.report import page

    if filters.since and filters.until and filters.since > filters.until:
        raise ConfigError("--since is after --until")
    with open_source(source_target, view_settings) as source:
        report = queries.build(source, filters)
    html = page.render(report, fmt, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(out)
    return out


def run(args: argparse.Namespace) -> int:
    require("report", "report")
    config = configuration.load(None)
    target = args.source or config.warehouse
    if kind_of(target) == "iceberg":
        require("report", "lake")
    filters = Filters(since=args.since, until=args.until, tenant=args.tenant)
    # a lake's KPI views are made as it is read, with the KPI settings of here
    kpi = ViewSettings(config.kpi_time_zone, config.kpi_sla_seconds)
    path = write_report(target, Path(args.out), filters, NumberFormat(args.locale), kpi)
    print(path.resolve())
    return 0
