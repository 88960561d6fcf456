"""The KPI views on their boundaries, on both engines: a first response exactly at the
SLA threshold meets it, a millisecond or a second over misses it; attendances either
side of midnight in the centre's time zone count on different days.

The centre (tenant ``borda``) is built here as Plug webhooks with times to the
millisecond, local to America/Sao_Paulo (UTC-3 all year since 2019); it goes through
the ingress's ``ingest`` and the warehouse's batch writer and is read back by the
report's client. The default settings apply: that zone and a 60 s SLA.

Department ``Limite``, all on 2025-03-12, the customer writes at request time, the
operator replies; each starts 30 s and ends five minutes after the request:

    #201  customer 10:00:00.000  reply 10:01:00.000  first response 60.000  met
    #202  customer 11:00:00.000  reply 11:01:00.001  first response 60.001  missed
    #203  customer 12:00:00.000  reply 12:00:59.999  first response 59.999  met
    #204  customer 13:00:00.000  reply 13:01:01.000  first response 61.000  missed

    -> 4 started and 4 finished on the 12th, 4 eligible, 2 met: 50 %

Department ``Meia-noite``, around the midnight from the 12th to the 13th:

    #210  req 23:50:00.000  start 23:51:00.000  end 23:59:59.999 (12th)
          customer 23:50:00.000  reply 23:50:30.000 (30 s, met)
    #211  req 23:56:00.000  start 23:59:59.999 (12th)  end 00:00:00.000 (13th)
          customer 23:56:00.000  reply 23:57:40.000 (100 s, missed)
    #212  req 23:59:00.000 (12th)  start 00:00:00.000  end 00:20:00.000 (13th)
          customer 23:59:00.000  reply 00:00:00.000 (13th; 60 s, met)

    12th: started #210 #211 (2), finished #210 (1); 1 eligible, 1 met: 100 %
    13th: started #212 (1), finished #211 #212 (2); 2 eligible, 1 met: 50 %

In UTC every one of these times is on the 13th (23:50 local is 02:50 UTC), so a day
taken in UTC instead of the centre's zone leaves no row on the 12th.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from pipeline import ingest
from pipeline.record import Record
from pipeline.report.source import DuckDBSource, PostgresSource, open_source
from pipeline.warehouse.target import open_target
from pipeline.webhooks import Webhook
from tests.support.loader import pg_database
from tests.support.warehouse import write_records

ZONE = ZoneInfo("America/Sao_Paulo")
DAY = dt.date(2025, 3, 12)
NEXT = dt.date(2025, 3, 13)
TENANT = "borda"


def ms(day: dt.date, clock: str) -> int:
    """Epoch ms of a local wall-clock time ``HH:MM:SS.fff`` on ``day``."""
    local = dt.datetime.combine(day, dt.time.fromisoformat(clock), tzinfo=ZONE)
    return (local - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


def _message(mid: str, phone: str, at: int, *, from_me: bool) -> dict[str, Any]:
    return {
        "messageId": mid,
        "phone": phone,
        "fromMe": from_me,
        "momment": at,
        "status": "SENT" if from_me else "RECEIVED",
        "isAutomaticMessage": False,
        "text": {"message": f"text of {mid}"},
    }


def _attendance(
    number: int,
    department: str,
    request: int,
    start: int,
    end: int,
    reply: int,
) -> list[Record]:
    """A start and a finish webhook; the customer writes at ``request``, the operator
    replies at ``reply``."""
    phone = f"55119000{number:05d}"  # a customer each: no recontacts
    chat = [(f"{number}-in", request, False), (f"{number}-out", reply, True)]

    def body(until: int, finished: bool) -> bytes:
        attendance: dict[str, Any] = {
            "attendanceNumber": number,
            "customer": {"name": f"customer {number}", "phone": phone},
            "departament": department,
            "startTime": start,
        }
        if finished:
            attendance |= {
                "requestTime": request,
                "endTime": end,
                "finishBy": "Ana",
                "status": "FINISH",
            }
        else:
            attendance |= {"operator": "Ana", "momment": start, "status": "PROGRESS"}
        messages = {
            mid: _message(mid, phone, at, from_me=mine) for mid, at, mine in chat if at <= until
        }
        return orjson.dumps({"attendance": attendance, "chat": messages})

    return [
        ingest.ingest(Webhook.START_ATTENDANCE, TENANT, body(start, False), start + 500, "plug"),
        ingest.ingest(Webhook.FINISH_ATTENDANCE, TENANT, body(end, True), end + 1000, "plug"),
    ]


def records() -> list[Record]:
    found: list[Record] = []
    threshold = [  # number, request (= customer), reply
        (201, "10:00:00.000", "10:01:00.000"),
        (202, "11:00:00.000", "11:01:00.001"),
        (203, "12:00:00.000", "12:00:59.999"),
        (204, "13:00:00.000", "13:01:01.000"),
    ]
    for number, request, reply in threshold:
        asked = ms(DAY, request)
        found += _attendance(
            number, "Limite", asked, asked + 30_000, asked + 300_000, ms(DAY, reply)
        )
    midnight = [  # number, request, start, end, reply: (day, clock) each
        (210, (DAY, "23:50:00.000"), (DAY, "23:51:00.000"), (DAY, "23:59:59.999"),
         (DAY, "23:50:30.000")),
        (211, (DAY, "23:56:00.000"), (DAY, "23:59:59.999"), (NEXT, "00:00:00.000"),
         (DAY, "23:57:40.000")),
        (212, (DAY, "23:59:00.000"), (NEXT, "00:00:00.000"), (NEXT, "00:20:00.000"),
         (NEXT, "00:00:00.000")),
    ]  # fmt: skip
    for number, *times in midnight:
        asked_at, start_at, end_at, reply_at = (ms(day, clock) for day, clock in times)
        found += _attendance(number, "Meia-noite", asked_at, start_at, end_at, reply_at)
    return found


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DuckDBSource | PostgresSource]:
    """The centre loaded into a fresh target, opened by the report's client."""

    def load(where: str) -> None:
        target = open_target(where)
        try:
            target.migrate()
            write_records(target, records())
        finally:
            target.close()

    if request.param == "duckdb":
        where = str(tmp_path_factory.mktemp("kpi-boundaries") / "plug.duckdb")
        load(where)
        with open_source(where) as source:
            yield source
    else:
        with pg_database() as url:
            load(url)
            with open_source(url) as source:
                yield source


def test_first_responses_and_days_of_each_attendance(
    warehouse: DuckDBSource | PostgresSource,
) -> None:
    rows = warehouse.rows(
        "SELECT attendance_number, day, first_response_s FROM attendance WHERE tenant = %(t)s",
        {"t": TENANT},
    )
    got = {r["attendance_number"]: (r["day"], r["first_response_s"]) for r in rows}
    assert got == {
        "201": (DAY, 60.0),
        "202": (DAY, pytest.approx(60.001)),
        "203": (DAY, pytest.approx(59.999)),
        "204": (DAY, 61.0),
        "210": (DAY, 30.0),
        "211": (NEXT, 100.0),
        "212": (NEXT, 60.0),
    }


def test_kpi_daily_on_the_sla_threshold_and_either_side_of_midnight(
    warehouse: DuckDBSource | PostgresSource,
) -> None:
    rows = warehouse.rows(
        "SELECT day, department, attendances_started, attendances_finished, sla_eligible, "
        "sla_met, sla_pct, sla_threshold_s FROM kpi_daily WHERE tenant = %(t)s",
        {"t": TENANT},
    )
    got = {
        (r["day"], r["department"]): (
            r["attendances_started"],
            r["attendances_finished"],
            r["sla_eligible"],
            r["sla_met"],
            r["sla_pct"],
        )
        for r in rows
    }
    assert got == {
        # started, finished, eligible, met, %
        (DAY, "Limite"): (4, 4, 4, 2, pytest.approx(50.0)),
        (DAY, "Meia-noite"): (2, 1, 1, 1, pytest.approx(100.0)),
        (NEXT, "Meia-noite"): (1, 2, 2, 1, pytest.approx(50.0)),
    }
    assert {r["sla_threshold_s"] for r in rows} == {60.0}


def test_the_local_day_is_not_the_utc_day() -> None:
    """The fixture sits where the two disagree: the same instants are all on the 13th
    in UTC, so the 12th's rows above come from the centre's zone."""
    for clock in ("23:50:00.000", "23:59:59.999"):
        instant = dt.datetime.fromtimestamp(ms(DAY, clock) / 1000, dt.UTC)
        assert instant.date() == NEXT, clock
