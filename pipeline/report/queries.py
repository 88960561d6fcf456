"""The report's queries: KPI views in, ``model.Report`` out.

Every query reads the views of ``pipeline.warehouse.views`` (and, for hourly
message volume, the two message tables), filtered by tenant and by local day. Counts
per day come from ``kpi_daily`` as they are; figures over a whole period (averages,
percentiles, shares) are computed again from ``attendance`` with the same
definitions, since an average of daily averages is not the period's average.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline.report.model import (
    Bucket,
    CategoryCount,
    Day,
    Department,
    Distribution,
    ErrorCount,
    Filters,
    Funnel,
    Headline,
    Hour,
    InstanceDowntime,
    Operator,
    Report,
)
from pipeline.report.source import Params, Source

# Upper bounds (seconds) of the distribution buckets; the last bucket is open.
BUCKET_EDGES: tuple[tuple[float, str], ...] = (
    (10, "< 10 s"),
    (30, "10–30 s"),
    (60, "30–60 s"),
    (120, "1–2 min"),
    (300, "2–5 min"),
    (600, "5–10 min"),
    (1800, "10–30 min"),
    (3600, "30–60 min"),
    (7200, "1–2 h"),
)
OPEN_BUCKET = "≥ 2 h"
MAX_OPERATORS = 50
MAX_CATEGORIES = 20
MAX_ERRORS = 12
MAX_INSTANCES = 20


def _where(filters: Filters, day: str = "day", tenant: str = "tenant") -> tuple[str, Params]:
    """A WHERE clause for the filters; column names are the code's own, values parameters."""
    clauses = ["TRUE"]
    params: dict[str, Any] = {}
    if filters.tenant is not None:
        clauses.append(f"{tenant} = %(tenant)s")
        params["tenant"] = filters.tenant
    if filters.since is not None:
        clauses.append(f"{day} >= %(since)s")
        params["since"] = filters.since
    if filters.until is not None:
        clauses.append(f"{day} <= %(until)s")
        params["until"] = filters.until
    return "WHERE " + " AND ".join(clauses), params


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def _pct(part: Any, whole: Any) -> float | None:
    return 100.0 * float(part) / float(whole) if whole else None


_PERIOD = """
SELECT count(*) AS finished,
       avg(queue_wait_s) AS avg_wait_s, avg(handle_s) AS avg_handle_s,
       avg(first_response_s) AS avg_first_response_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_s) AS p90_first_response_s,
       count(*) FILTER (WHERE first_customer_at IS NOT NULL) AS sla_eligible,
       count(*) FILTER (WHERE first_response_s <= %(sla)s) AS sla_met,
       count(*) FILTER (WHERE recontact_24h) AS recontacts,
       count(*) FILTER (WHERE transferred) AS transferred,
       avg(CAST(messages_total AS float8)) AS messages_per_attendance
FROM attendance {where}
"""


def _headline(source: Source, filters: Filters, sla: float) -> Headline:
    where, params = _where(filters)
    counts = source.rows(
        f"SELECT sum(attendances_started) AS started, sum(attendances_finished) AS finished "
        f"FROM kpi_daily {where}",
        params,
    )[0]
    period = source.rows(_PERIOD.format(where=where), {**params, "sla": sla})[0]
    delivery = source.rows(
        f"SELECT sum(messages) AS sent, sum(read) AS read, sum(failed) AS failed "
        f"FROM delivery_daily {where}",
        params,
    )[0]
    finished = _int(period["finished"])
    return Headline(
        attendances_started=_int(counts["started"]),
        attendances_finished=_int(counts["finished"]),
        avg_wait_s=_float(period["avg_wait_s"]),
        avg_handle_s=_float(period["avg_handle_s"]),
        avg_first_response_s=_float(period["avg_first_response_s"]),
        p90_first_response_s=_float(period["p90_first_response_s"]),
        sla_pct=_pct(period["sla_met"], period["sla_eligible"]),
        recontact_pct=_pct(period["recontacts"], finished),
        transferred_pct=_pct(period["transferred"], finished),
        messages_per_attendance=_float(period["messages_per_attendance"]),
        messages_out=_int(delivery["sent"]),
        failure_pct=_pct(delivery["failed"], delivery["sent"]),
        read_pct=_pct(delivery["read"], delivery["sent"]),
    )


def _days(source: Source, filters: Filters) -> list[Day]:
    where, params = _where(filters)
    counts = source.rows(
        f"SELECT day, sum(attendances_started) AS started, "
        f"sum(attendances_finished) AS finished, sum(sla_met) AS sla_met, "
        f"sum(sla_eligible) AS sla_eligible FROM kpi_daily {where} GROUP BY day ORDER BY day",
        params,
    )
    spread = {
        r["day"]: r
        for r in source.rows(
            f"SELECT day, "
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_s) AS p50, "
            f"percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_s) AS p90 "
            f"FROM attendance {where} GROUP BY day",
            params,
        )
    }
    return [
        Day(
            day=r["day"],
            started=_int(r["started"]),
            finished=_int(r["finished"]),
            sla_pct=_pct(r["sla_met"], r["sla_eligible"]),
            p50_first_response_s=_float(spread.get(r["day"], {}).get("p50")),
            p90_first_response_s=_float(spread.get(r["day"], {}).get("p90")),
        )
        for r in counts
    ]


def _hours(source: Source, filters: Filters, zone: str) -> list[Hour]:
    local = "(COALESCE(moment, received_at) AT TIME ZONE %(zone)s)"
    w_att, params = _where(filters)
    w_in, _ = _where(filters, day=f"CAST({local} AS DATE)")
    w_out, _ = _where(filters, day="CAST((sent_at AT TIME ZONE %(zone)s) AS DATE)")
    sql = f"""
SELECT hour, sum(attendances) AS attendances, sum(messages_in) AS messages_in,
       sum(messages_out) AS messages_out
FROM (
  SELECT date_trunc('hour', ended_at_local) AS hour, 1 AS attendances,
         0 AS messages_in, 0 AS messages_out
  FROM attendance {w_att}
  UNION ALL
  SELECT date_trunc('hour', {local}), 0, 1, 0
  FROM message_received {w_in} AND NOT COALESCE(from_me, FALSE)
  UNION ALL
  SELECT date_trunc('hour', sent_at AT TIME ZONE %(zone)s), 0, 0, 1
  FROM message_delivery {w_out}
) volume
GROUP BY hour ORDER BY hour
"""
    return [
        Hour(r["hour"], _int(r["attendances"]), _int(r["messages_in"]), _int(r["messages_out"]))
        for r in source.rows(sql, {**params, "zone": zone})
    ]


def _bucket_case(column: str) -> str:
    whens = " ".join(f"WHEN {column} < {edge} THEN {i}" for i, (edge, _) in enumerate(BUCKET_EDGES))
    return f"CASE {whens} ELSE {len(BUCKET_EDGES)} END"


def _distributions(source: Source, filters: Filters) -> list[Distribution]:
    where, params = _where(filters)
    names = {"queue_wait_s": "Queue wait", "handle_s": "Handle time"}
    names["first_response_s"] = "First response"
    parts = [
        f"SELECT '{column}' AS metric, {_bucket_case(column)} AS bucket, count(*) AS n "
        f"FROM attendance {where} AND {column} IS NOT NULL GROUP BY 1, 2"
        for column in names
    ]
    found: dict[tuple[str, int], int] = {
        (r["metric"], int(r["bucket"])): int(r["n"])
        for r in source.rows(" UNION ALL ".join(parts), params)
    }
    labels = [label for _, label in BUCKET_EDGES] + [OPEN_BUCKET]
    return [
        Distribution(
            name,
            [Bucket(label, found.get((column, i), 0)) for i, label in enumerate(labels)],
        )
        for column, name in names.items()
    ]


def _departments(source: Source, filters: Filters, sla: float) -> list[Department]:
    where, params = _where(filters)
    counts = source.rows(
        f"SELECT COALESCE(department, '') AS department, "
        f"sum(attendances_started) AS started, sum(attendances_finished) AS finished "
        f"FROM kpi_daily {where} GROUP BY COALESCE(department, '')",
        params,
    )
    figures = {
        r["department"]: r
        for r in source.rows(
            f"SELECT COALESCE(department, '') AS department, avg(queue_wait_s) AS wait, "
            f"avg(handle_s) AS handle, avg(first_response_s) AS first_response, "
            f"count(*) FILTER (WHERE first_customer_at IS NOT NULL) AS eligible, "
            f"count(*) FILTER (WHERE first_response_s <= %(sla)s) AS met, "
            f"count(*) FILTER (WHERE recontact_24h) AS recontacts, count(*) AS n "
            f"FROM attendance {where} GROUP BY COALESCE(department, '')",
            {**params, "sla": sla},
        )
    }
    rows = []
    for r in counts:
        f = figures.get(r["department"], {})
        rows.append(
            Department(
                department=r["department"],
                started=_int(r["started"]),
                finished=_int(r["finished"]),
                avg_wait_s=_float(f.get("wait")),
                avg_handle_s=_float(f.get("handle")),
                avg_first_response_s=_float(f.get("first_response")),
                sla_pct=_pct(f.get("met", 0), f.get("eligible", 0)),
                recontact_pct=_pct(f.get("recontacts", 0), f.get("n", 0)),
            )
        )
    return sorted(rows, key=lambda d: (-d.finished, d.department))


def _operators(source: Source, filters: Filters, sla: float) -> list[Operator]:
    where, params = _where(filters)
    sql = f"""
SELECT a.operator, a.attendances, a.handle, a.first_response, a.eligible, a.met,
       a.transferred, c.avg_concurrency, c.max_concurrency
FROM (
  SELECT COALESCE(finished_by, operator, '') AS operator, count(*) AS attendances,
         avg(handle_s) AS handle, avg(first_response_s) AS first_response,
         count(*) FILTER (WHERE first_customer_at IS NOT NULL) AS eligible,
         count(*) FILTER (WHERE first_response_s <= %(sla)s) AS met,
         count(*) FILTER (WHERE transferred) AS transferred
  FROM attendance {where} GROUP BY COALESCE(finished_by, operator, '')
) a LEFT JOIN (
  SELECT COALESCE(operator, '') AS operator, avg(avg_concurrency) AS avg_concurrency,
         max(max_concurrency) AS max_concurrency
  FROM operator_daily {where} GROUP BY COALESCE(operator, '')
) c ON c.operator = a.operator
ORDER BY a.attendances DESC, a.operator
LIMIT {MAX_OPERATORS}
"""
    return [
        Operator(
            operator=r["operator"],
            attendances=_int(r["attendances"]),
            avg_handle_s=_float(r["handle"]),
            avg_first_response_s=_float(r["first_response"]),
            sla_pct=_pct(r["met"], r["eligible"]),
            transferred=_int(r["transferred"]),
            avg_concurrency=_float(r["avg_concurrency"]),
            max_concurrency=_int(r["max_concurrency"]),
        )
        for r in source.rows(sql, {**params, "sla": sla})
    ]


def _categories(source: Source, filters: Filters) -> list[CategoryCount]:
    where, params = _where(filters)
    rows = source.rows(
        f"SELECT COALESCE(category_name, '') AS category, COALESCE(item_name, '') AS item, "
        f"sum(attendances) AS n FROM category_daily {where} GROUP BY 1, 2 "
        f"ORDER BY n DESC, 1, 2 LIMIT {MAX_CATEGORIES}",
        params,
    )
    return [CategoryCount(r["category"], r["item"], _int(r["n"])) for r in rows]


def _funnel(source: Source, filters: Filters) -> Funnel:
    where, params = _where(filters)
    r = source.rows(
        f"SELECT count(*) AS sent, count(delivered_at) AS delivered, count(read_at) AS read, "
        f"count(*) FILTER (WHERE outcome = 'failed') AS failed, "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY deliver_s) AS p50_deliver_s, "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY read_s) AS p50_read_s "
        f"FROM message_delivery {where}",
        params,
    )[0]
    return Funnel(
        sent=_int(r["sent"]),
        delivered=_int(r["delivered"]),
        read=_int(r["read"]),
        failed=_int(r["failed"]),
        p50_deliver_s=_float(r["p50_deliver_s"]),
        p50_read_s=_float(r["p50_read_s"]),
    )


def _errors(source: Source, filters: Filters) -> list[ErrorCount]:
    where, params = _where(filters)
    rows = source.rows(
        f"SELECT COALESCE(error, '') AS error, COALESCE(error_code, '') AS error_code, "
        f"sum(failures) AS n FROM delivery_error_daily {where} GROUP BY 1, 2 "
        f"ORDER BY n DESC, 1, 2 LIMIT {MAX_ERRORS}",
        params,
    )
    return [ErrorCount(r["error"], r["error_code"], _int(r["n"])) for r in rows]


def _downtime(source: Source, filters: Filters) -> tuple[list[InstanceDowntime], int]:
    where, params = _where(filters)
    rows = source.rows(
        f"""
SELECT instance_id, count(*) AS disconnects, sum(downtime_s) AS total_s,
       max(downtime_s) AS longest_s, count(*) FILTER (WHERE back_at IS NULL) AS still_down,
       max(disconnected_at) AS last_at
FROM instance_downtime {where} AND instance_id IS NOT NULL
GROUP BY instance_id ORDER BY total_s DESC NULLS FIRST, instance_id LIMIT {MAX_INSTANCES}
""",
        params,
    )
    last_errors = {
        r["instance_id"]: r["error"]
        for r in source.rows(
            f"SELECT instance_id, error FROM (SELECT instance_id, error, row_number() OVER "
            f"(PARTITION BY instance_id ORDER BY disconnected_at DESC) AS k "
            f"FROM instance_downtime {where} AND instance_id IS NOT NULL) t WHERE k = 1",
            params,
        )
    }
    unmatched = source.rows(
        f"SELECT count(*) AS n FROM instance_downtime {where} AND instance_id IS NULL", params
    )[0]["n"]
    found = [
        InstanceDowntime(
            instance_id=r["instance_id"],
            disconnects=_int(r["disconnects"]),
            total_s=_float(r["total_s"]),
            longest_s=_float(r["longest_s"]),
            still_down=_int(r["still_down"]),
            last_disconnect=r["last_at"],
            last_error=last_errors.get(r["instance_id"]) or "",
        )
        for r in rows
    ]
    return found, _int(unmatched)


def settings(source: Source) -> tuple[str, float]:
    row = source.rows("SELECT time_zone, sla_seconds FROM kpi_settings")[0]
    return str(row["time_zone"]), float(row["sla_seconds"])


def build(source: Source, filters: Filters) -> Report:
    """Every figure of the report, read from one warehouse."""
    zone, sla = settings(source)
    tenant_where, tenant_params = _where(Filters(tenant=filters.tenant))
    tenants = [
        r["tenant"]
        for r in source.rows(
            f"SELECT DISTINCT tenant FROM kpi_daily {tenant_where} ORDER BY tenant",
            tenant_params,
        )
    ]
    downtime, unmatched = _downtime(source, filters)
    return Report(
        filters=filters,
        time_zone=zone,
        sla_seconds=sla,
        tenants=tenants,
        headline=_headline(source, filters, sla),
        days=_days(source, filters),
        hours=_hours(source, filters, zone),
        distributions=_distributions(source, filters),
        departments=_departments(source, filters, sla),
        operators=_operators(source, filters, sla),
        categories=_categories(source, filters),
        funnel=_funnel(source, filters),
        errors=_errors(source, filters),
        downtime=downtime,
        unmatched_disconnects=unmatched,
    )


def parse_day(text: str) -> dt.date:
    """``YYYY-MM-DD``, for ``--since`` / ``--until``."""
    return dt.date.fromisoformat(text)
