"""The report reads the same figures from DuckDB and PostgreSQL, and renders empty periods."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.report import queries
from pipeline.report.command import write_report
from pipeline.report.model import Filters, Report
from pipeline.report.numbers import NumberFormat
from pipeline.report.source import open_source
from tests.support import kpi_fixtures as fx
from tests.support.loader import pg_database


def _report(where: str, filters: Filters) -> Report:
    with open_source(where) as source:
        return queries.build(source, filters)


@pytest.fixture(scope="module")
def duckdb_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    where = str(tmp_path_factory.mktemp("report") / "plug.duckdb")
    fx.load(where)
    return where


FILTERS = [
    Filters(),
    Filters(tenant="acme"),
    Filters(since=fx.DAY2),
    Filters(until=fx.DAY1, tenant="globex"),
]


def test_both_targets_give_the_same_report(duckdb_file: str) -> None:
    with pg_database() as url:
        fx.load(url)
        for filters in FILTERS:
            assert _report(duckdb_file, filters) == _report(url, filters), filters


def test_headline_and_days_for_one_tenant(duckdb_file: str) -> None:
    report = _report(duckdb_file, Filters(tenant="acme"))
    h = report.headline
    assert (h.attendances_started, h.attendances_finished) == (6, 5)
    # eligible: #101-#105 (customers wrote in all five); met: #102 (40 s), #103 (50 s)
    assert h.sla_pct == pytest.approx(40.0)
    assert h.avg_wait_s == pytest.approx((120 + 30 + 60 + 300 + 120) / 5)
    assert h.transferred_pct == pytest.approx(20.0)
    assert [(d.day, d.started, d.finished) for d in report.days] == [
        (fx.DAY1, 3, 3),
        (fx.DAY2, 3, 2),
    ]
    assert report.days[0].sla_pct == pytest.approx(100 * 2 / 3)
    assert (report.funnel.sent, report.funnel.delivered, report.funnel.read) == (4, 2, 2)
    assert [(e.error, e.failures) for e in report.errors] == [("Phone number does not exist", 1)]
    i1 = next(d for d in report.downtime if d.instance_id == "I1")
    assert (i1.disconnects, i1.total_s) == (1, 300)
    assert report.unmatched_disconnects == 1
    assert sum(b.count for b in report.distributions[0].buckets) == 5


def test_a_tenant_without_data_renders(duckdb_file: str, tmp_path: Path) -> None:
    report = _report(duckdb_file, Filters(tenant="nobody"))
    assert report.headline.attendances_finished == 0
    assert report.days == []
    assert report.hours == []
    assert report.operators == []
    out = write_report(duckdb_file, tmp_path / "r.html", Filters(tenant="nobody"), NumberFormat())
    html = out.read_text(encoding="utf-8")
    assert "No attendances in this period." in html
    assert 'class="chart"' not in html  # no empty axes


def test_an_empty_warehouse_renders(tmp_path: Path) -> None:
    where = str(tmp_path / "empty.duckdb")
    fx.load(where, [])
    filters = Filters(since=dt.date(2030, 1, 1))
    out = write_report(where, tmp_path / "r.html", filters, NumberFormat("pt-BR"))
    html = out.read_text(encoding="utf-8")
    assert "No outbound messages in this period." in html
    assert "01/01/2030" in html
