"""The KPI views on both targets give the figures worked out by hand for ``kpi_fixtures``.

Fixture webhooks go through the ingress's own ``ingest`` and the warehouse's own batch
writer (no Kafka needed), and are read back read-only by the report's client, not the
writer. Every expected number below is derived in ``kpi_fixtures``' docstring.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.report.source import DuckDBSource, PostgresSource, open_source
from pipeline.simulate.generator import Generator
from pipeline.warehouse.views import ViewSettings
from tests.support import kpi_fixtures as fx
from tests.support.loader import pg_database, record_for

D1, D2 = fx.DAY1, fx.DAY2
approx = pytest.approx


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DuckDBSource | PostgresSource]:
    """The fixture centre loaded into a fresh target, opened read-only by another client."""
    if request.param == "duckdb":
        where = str(tmp_path_factory.mktemp("kpi") / "plug.duckdb")
        fx.load(where)
        with open_source(where) as source:
            yield source
    else:
        with pg_database() as url:
            fx.load(url)
            with open_source(url) as source:
                yield source


def _by(rows: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    return {tuple(r[k] for k in keys): r for r in rows}


def test_attendance_figures(warehouse: DuckDBSource | PostgresSource) -> None:
    rows = _by(warehouse.rows("SELECT * FROM attendance"), "tenant", "attendance_number")
    assert set(rows) == {("acme", str(n)) for n in range(101, 106)} | {("globex", "101")}
    expected = {
        # number: day, wait, handle, first response, in, out, auto, transferred, recontact
        "101": (D1, 120, 480, 150, 2, 2, 1, False, True),
        "102": (D1, 30, 300, 40, 1, 1, 0, True, True),
        "103": (D1, 60, 5340, 50, 1, 1, 0, False, False),
        "104": (D2, 300, 900, None, 1, 0, 0, False, False),
        "105": (D2, 120, None, 140, 1, 1, 0, False, False),
    }
    for number, (day, wait, handle, first, n_in, n_out, n_auto, moved, back) in expected.items():
        row = rows[("acme", number)]
        got = (
            row["day"],
            row["queue_wait_s"],
            row["handle_s"],
            row["first_response_s"],
            row["messages_in"],
            row["messages_out"],
            row["messages_automatic"],
            row["transferred"],
            row["recontact_24h"],
        )
        assert got == (day, wait, handle, first, n_in, n_out, n_auto, moved, back), number
    assert rows[("acme", "102")]["operator"] == "Bruno"
    assert rows[("acme", "102")]["finished_by"] == "Ana"
    # The later of #102's two finishes wins, with its categories.
    assert rows[("acme", "102")]["categories"] == "Motivo: Troca"
    assert rows[("acme", "101")]["categories"] == "Suporte"
    globex = rows[("globex", "101")]
    assert (globex["queue_wait_s"], globex["handle_s"], globex["first_response_s"]) == (
        10,
        290,
        10,
    )


KPI_COLUMNS = [
    "attendances_started",
    "attendances_finished",
    "avg_wait_s",
    "p50_wait_s",
    "p90_wait_s",
    "avg_handle_s",
    "p50_handle_s",
    "p90_handle_s",
    "avg_first_response_s",
    "p50_first_response_s",
    "p90_first_response_s",
    "sla_eligible",
    "sla_met",
    "sla_pct",
    "messages_per_attendance",
    "recontact_pct",
]
N = None
KPI_EXPECTED: dict[tuple[str, dt.date, str], tuple[Any, ...]] = {
    # waits 120, 30; handles 480, 300; first responses 150, 40 (one within 60 s);
    # 5 + 2 messages; both customers came back within 24 h (C1 as #103, C2 as #106).
    # p90 of two values a < b: a + 0.9 (b - a).
    ("acme", D1, "Suporte"): (2, 2, 75, 75, 111, 390, 390, 462, 95, 95, 139, 2, 1, 50, 3.5, 100),
    ("acme", D1, "Vendas"): (1, 1, 60, 60, 60, 5340, 5340, 5340, 50, 50, 50, 1, 1, 100, 2, 0),
    # waits 300, 120; one handle time (#105 has no end); one first response, 140 s (#104
    # unanswered): both miss the SLA.
    ("acme", D2, "Suporte"): (2, 2, 210, 210, 282, 900, 900, 900, 140, 140, 140, 2, 0, 0, 1.5, 0),
    ("acme", D2, "Vendas"): (1, 0, N, N, N, N, N, N, N, N, N, 0, 0, N, N, N),
    ("globex", D1, "Suporte"): (1, 1, 10, 10, 10, 290, 290, 290, 10, 10, 10, 1, 1, 100, 2, 0),
}


def test_kpi_daily_figures(warehouse: DuckDBSource | PostgresSource) -> None:
    rows = _by(warehouse.rows("SELECT * FROM kpi_daily"), "tenant", "day", "department")
    assert set(rows) == set(KPI_EXPECTED)
    for key, expected in KPI_EXPECTED.items():
        got = tuple(rows[key][c] for c in KPI_COLUMNS)
        assert got == approx(expected), key
        assert rows[key]["sla_threshold_s"] == 60


def test_kpi_daily_counts_each_finished_attendance_once(
    warehouse: DuckDBSource | PostgresSource,
) -> None:
    total = warehouse.rows("SELECT sum(attendances_finished) AS n FROM kpi_daily")[0]["n"]
    distinct = warehouse.rows(
        "SELECT count(*) AS n FROM (SELECT DISTINCT tenant, attendance_number "
        "FROM attendance_finished) t"
    )[0]["n"]
    assert total == distinct == 6


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_kpi_daily_sum_on_a_simulated_centre(kind: str, tmp_path: Path) -> None:
    records = [record_for(w, body, "plug") for w, body in Generator(11).take(4000)]
    sql_total = "SELECT sum(attendances_finished) AS n FROM kpi_daily"
    sql_distinct = (
        "SELECT count(*) AS n FROM (SELECT DISTINCT tenant, attendance_number "
        "FROM attendance_finished) t"
    )

    def check(where: str) -> None:
        fx.load(where, records)
        with open_source(where) as source:
            total = source.rows(sql_total)[0]["n"]
            distinct = source.rows(sql_distinct)[0]["n"]
            finished = source.rows("SELECT count(*) AS n FROM attendance")[0]["n"]
        assert distinct > 200  # a few hundred attendances: the check is not vacuous
        assert total == distinct == finished

    if kind == "duckdb":
        check(str(tmp_path / "plug.duckdb"))
    else:
        with pg_database() as url:
            check(url)


def test_operator_daily(warehouse: DuckDBSource | PostgresSource) -> None:
    rows = _by(warehouse.rows("SELECT * FROM operator_daily"), "tenant", "day", "operator")
    ana = rows[("acme", D1, "Ana")]
    # #101 12:02-12:10 and #102 12:04:30-12:09:30 overlap; #103 20:01-21:30 is alone.
    assert (ana["attendances"], ana["max_concurrency"]) == (3, 2)
    assert ana["handle_total_s"] == approx(480 + 300 + 5340)
    assert ana["avg_first_response_s"] == approx((150 + 40 + 50) / 3)
    # handle time over the span from the first start (12:02) to the last end (21:30)
    assert ana["avg_concurrency"] == approx(6120 / 34080)
    bruno = rows[("acme", D2, "Bruno")]
    assert (bruno["attendances"], bruno["max_concurrency"]) == (2, 1)
    assert bruno["avg_concurrency"] == approx(1.0)


def test_category_daily(warehouse: DuckDBSource | PostgresSource) -> None:
    rows = warehouse.rows(
        "SELECT category_name, item_name, attendances FROM category_daily "
        "WHERE tenant = 'acme' AND day = %(day)s",
        {"day": D1},
    )
    assert {(r["category_name"], r["item_name"]): r["attendances"] for r in rows} == {
        ("Suporte", None): 1,
        ("Motivo", "Troca"): 1,
    }


def test_message_delivery(warehouse: DuckDBSource | PostgresSource) -> None:
    rows = _by(warehouse.rows("SELECT * FROM message_delivery"), "message_id")
    assert {k[0]: r["outcome"] for k, r in rows.items()} == {
        "M1": "read",
        "M2": "read",
        "M3": "failed",
        "M4": "sent",
    }
    assert (rows[("M1",)]["deliver_s"], rows[("M1",)]["read_s"]) == (2, 10)
    # READ without RECEIVED: delivered when read
    assert (rows[("M2",)]["deliver_s"], rows[("M2",)]["read_s"]) == (20, 20)
    assert rows[("M3",)]["error"] == "Phone number does not exist"
    daily = _by(warehouse.rows("SELECT * FROM delivery_daily"), "tenant", "day")
    d = daily[("acme", D1)]
    got = (d["messages"], d["delivered"], d["read"], d["failed"])
    assert got == (4, 2, 2, 1)
    got_pct = (d["delivered_pct"], d["read_pct"], d["failure_pct"])
    assert got_pct == approx((50, 50, 25))
    assert (d["p50_deliver_s"], d["p50_read_s"]) == approx((11, 15))
    errors = warehouse.rows("SELECT error, error_code, failures FROM delivery_error_daily")
    assert [(e["error"], e["error_code"], e["failures"]) for e in errors] == [
        ("Phone number does not exist", None, 1)
    ]


def test_instance_downtime(warehouse: DuckDBSource | PostgresSource) -> None:
    rows = warehouse.rows("SELECT instance_id, downtime_s, back_at FROM instance_downtime")
    found = {r["instance_id"]: r["downtime_s"] for r in rows}
    assert found == {"I1": 300, "I2": None, None: None}


def test_the_time_zone_and_sla_settings_reach_the_views(tmp_path: Path) -> None:
    where = str(tmp_path / "utc.duckdb")
    fx.load(where, settings=ViewSettings(time_zone="UTC", sla_seconds=45))
    with open_source(where) as source:
        assert source.rows("SELECT * FROM kpi_settings") == [
            {"time_zone": "UTC", "sla_seconds": 45.0}
        ]
        # #103 ended at 00:30 UTC on the 11th: in UTC that is its day
        day = source.rows("SELECT day FROM attendance WHERE attendance_number = '103'")
        assert day == [{"day": D2}]
        # on the 10th (UTC) #101 (150 s) and #102 (40 s) remain, and 40 s is within 45 s
        row = source.rows(
            "SELECT sla_met, sla_eligible, sla_threshold_s FROM kpi_daily "
            "WHERE tenant = 'acme' AND day = %(day)s AND department = 'Suporte'",
            {"day": D1},
        )
        assert row == [{"sla_met": 1, "sla_eligible": 2, "sla_threshold_s": 45.0}]
