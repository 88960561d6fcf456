"""Contact-centre KPI views over the warehouse tables, for DuckDB and PostgreSQL.

``statements(dialect)`` returns the SQL that (re)creates every view; the migration
runner executes it after the table migrations on every start. Every figure is
defined once, here, and documented in ``docs/analytics.md``. Durations are seconds
(``float8``); days and hours are local to the configured time zone.

Views, each built on the ones above it:

    kpi_settings          the time zone and SLA threshold the views were created with
    attendance            one row per finished attendance (tenant + attendance number)
    kpi_daily             per tenant, day, department: volume, wait, handle, first response, SLA
    operator_daily        per tenant, day, operator: attendances, handle time, concurrency
    category_daily        per tenant, day, category / item: attendances
    message_delivery      one row per outbound message: sent, delivered, read, failed
    delivery_daily        per tenant, day: funnel and time to deliver / read
    delivery_error_daily  per tenant, day, error: failures (the error mix)
    instance_downtime     one row per disconnect: until the instance's next event

The SQL is the same on both engines: they share ``AT TIME ZONE``, ordered-set
``percentile_cont``, ``FILTER`` and window frames. The one trap is integer
division (``/`` on integers is float division in DuckDB and truncating in
PostgreSQL), so every ratio casts to ``float8`` first. Views are dropped and
created rather than ``CREATE OR REPLACE``d: PostgreSQL refuses to replace a view
whose columns changed. On PostgreSQL they are created ``WITH (security_invoker = true)``,
the one difference: they read their tables under the row-level security of the role
querying them (``isolation.py``).
"""

from __future__ import annotations

import math
import re
import zoneinfo
from dataclasses import dataclass
from typing import Literal

Dialect = Literal["duckdb", "postgresql"]

DEFAULT_TIME_ZONE = "America/Sao_Paulo"
DEFAULT_SLA_SECONDS = 60.0

# Creation order; dropped in reverse. Each view uses only tables and views before it.
VIEW_NAMES = (
    "kpi_settings",
    "attendance",
    "kpi_daily",
    "operator_daily",
    "category_daily",
    "message_delivery",
    "delivery_daily",
    "delivery_error_daily",
    "instance_downtime",
)


@dataclass(frozen=True)
class ViewSettings:
    """What the views are created with (``PLUG_PIPELINE_KPI_*``)."""

    time_zone: str = DEFAULT_TIME_ZONE
    sla_seconds: float = DEFAULT_SLA_SECONDS


_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-/]+")


def _seconds(later: str, earlier: str) -> str:
    """Seconds from ``earlier`` to ``later`` (two timestamptz expressions), as float8."""
    return f"CAST(EXTRACT(EPOCH FROM ({later}) - ({earlier})) AS float8)"


def _pct(part: str, whole: str) -> str:
    """``100 * part / whole`` as float8; NULL when ``whole`` is 0."""
    return f"100.0 * CAST({part} AS float8) / CAST(NULLIF({whole}, 0) AS float8)"


def _local(ts: str, zone: str) -> str:
    return f"(({ts}) AT TIME ZONE '{zone}')"


def _summary(column: str, name: str) -> str:
    """Average, median and 90th percentile of a seconds column."""
    return (
        f"avg({column}) AS avg_{name}_s,\n"
        f"  percentile_cont(0.5) WITHIN GROUP (ORDER BY {column}) AS p50_{name}_s,\n"
        f"  percentile_cont(0.9) WITHIN GROUP (ORDER BY {column}) AS p90_{name}_s"
    )


def _kpi_settings(zone: str, sla: float) -> str:
    return f"""
SELECT CAST('{zone}' AS VARCHAR) AS time_zone, CAST({sla!r} AS float8) AS sla_seconds
"""


# Another start of the same attendance that came first (by start time, then event id);
# ``s`` is the start being tested.
_EARLIER_START = """
    SELECT 1 FROM attendance_started e
    WHERE e.tenant = s.tenant AND e.attendance_number = s.attendance_number
      AND (COALESCE(e.start_time, e.moment, e.received_at)
             < COALESCE(s.start_time, s.moment, s.received_at)
           OR (COALESCE(e.start_time, e.moment, e.received_at)
                 = COALESCE(s.start_time, s.moment, s.received_at)
               AND e.event_id < s.event_id))"""


def _attendance(zone: str) -> str:
    # The latest finish of an attendance wins (Plug may send a corrected finish); its
    # transcript and categories are the ones counted. The first start gives the operator
    # who picked it up. Both are picked with NOT EXISTS rather than a row_number() = 1
    # filter: PostgreSQL guesses that such a filter keeps 0.5% of the rows and then
    # joins with nested loops (a minute for 13k attendances instead of a second).
    return f"""
WITH finished AS (
  SELECT f.*, COALESCE(f.end_time, f.received_at) AS ended_at
  FROM attendance_finished f
  WHERE NOT EXISTS (
    SELECT 1 FROM attendance_finished g
    WHERE g.tenant = f.tenant AND g.attendance_number = f.attendance_number
      AND (g.received_at > f.received_at
           OR (g.received_at = f.received_at AND g.event_id > f.event_id)))
),
started AS (
  SELECT s.tenant, s.attendance_number, s.operator, s.start_time
  FROM attendance_started s
  WHERE NOT EXISTS ({_EARLIER_START})
),
transcript AS (
  SELECT m.event_id,
         min(m.moment) FILTER (WHERE NOT m.from_me) AS first_customer_at,
         count(*) FILTER (WHERE NOT m.from_me) AS messages_in,
         count(*) FILTER (WHERE m.from_me AND NOT COALESCE(m.is_automatic, FALSE))
           AS messages_out,
         count(*) FILTER (WHERE m.from_me AND COALESCE(m.is_automatic, FALSE))
           AS messages_automatic
  FROM attendance_message m
  WHERE m.event_id IN (SELECT event_id FROM finished)
  GROUP BY m.event_id
),
first_reply AS (
  SELECT m.event_id, min(m.moment) AS first_response_at
  FROM attendance_message m JOIN transcript t ON t.event_id = m.event_id
  WHERE m.from_me AND NOT COALESCE(m.is_automatic, FALSE) AND m.moment >= t.first_customer_at
  GROUP BY m.event_id
),
categories AS (
  SELECT c.event_id,
         string_agg(CASE WHEN c.item_name IS NULL THEN c.category_name
                         ELSE c.category_name || ': ' || c.item_name END,
                    ', ' ORDER BY c.position) AS categories
  FROM attendance_category c
  WHERE c.event_id IN (SELECT event_id FROM finished)
  GROUP BY c.event_id
),
contacts AS (
  -- When each attendance began, started-only ones included: a customer who is back
  -- counts as a recontact even while their new attendance is still open.
  SELECT tenant, attendance_number, min(customer_phone) AS customer_phone,
         min(contact_at) AS contact_at
  FROM (
    SELECT tenant, attendance_number, customer_phone,
           COALESCE(request_time, start_time, end_time, received_at) AS contact_at
    FROM attendance_finished
    UNION ALL
    SELECT tenant, attendance_number, customer_phone,
           COALESCE(start_time, moment, received_at)
    FROM attendance_started
  ) both_kinds
  GROUP BY tenant, attendance_number
),
next_contact AS (
  SELECT tenant, attendance_number,
         lead(contact_at) OVER (PARTITION BY tenant, customer_phone
                                ORDER BY contact_at, attendance_number) AS next_contact_at
  FROM contacts WHERE customer_phone IS NOT NULL
),
joined AS (
  SELECT f.event_id, f.tenant, f.attendance_number, f.status,
         f.customer_name, f.customer_phone, f.department,
         s.operator, f.finished_by, cat.categories,
         f.request_time, COALESCE(f.start_time, s.start_time) AS start_time, f.end_time,
         f.ended_at, f.received_at,
         t.first_customer_at, r.first_response_at,
         COALESCE(t.messages_in, 0) AS messages_in,
         COALESCE(t.messages_out, 0) AS messages_out,
         COALESCE(t.messages_automatic, 0) AS messages_automatic,
         COALESCE(s.operator IS NOT NULL AND f.finished_by IS NOT NULL
                  AND s.operator <> f.finished_by, FALSE) AS transferred,
         nc.next_contact_at
  FROM finished f
  LEFT JOIN started s ON s.tenant = f.tenant AND s.attendance_number = f.attendance_number
  LEFT JOIN transcript t ON t.event_id = f.event_id
  LEFT JOIN first_reply r ON r.event_id = f.event_id
  LEFT JOIN categories cat ON cat.event_id = f.event_id
  LEFT JOIN next_contact nc ON nc.tenant = f.tenant
                           AND nc.attendance_number = f.attendance_number
)
SELECT tenant, attendance_number, event_id, status, customer_name, customer_phone,
       department, operator, finished_by, categories,
       request_time, start_time, end_time, ended_at,
       CAST({_local("ended_at", zone)} AS DATE) AS day,
       {_local("ended_at", zone)} AS ended_at_local,
       {_seconds("start_time", "request_time")} AS queue_wait_s,
       {_seconds("end_time", "start_time")} AS handle_s,
       first_customer_at, first_response_at,
       {_seconds("first_response_at", "first_customer_at")} AS first_response_s,
       messages_in, messages_out, messages_automatic,
       messages_in + messages_out + messages_automatic AS messages_total,
       transferred,
       COALESCE(customer_phone IS NOT NULL AND next_contact_at IS NOT NULL
                AND next_contact_at <= ended_at + INTERVAL '24 hours', FALSE) AS recontact_24h
FROM joined
"""


def _kpi_daily(zone: str, sla: float) -> str:
    # Started and finished attendances are counted on their own days (start and end), so
    # the two halves are stacked and grouped once; NULL metrics on started rows are
    # ignored by every aggregate.
    return f"""
WITH first_start AS (
  SELECT s.tenant, s.department, COALESCE(s.start_time, s.moment, s.received_at) AS started_at
  FROM attendance_started s
  WHERE NOT EXISTS ({_EARLIER_START})
),
stacked AS (
  SELECT tenant, CAST({_local("started_at", zone)} AS DATE) AS day, department,
         1 AS started, 0 AS finished,
         CAST(NULL AS float8) AS queue_wait_s, CAST(NULL AS float8) AS handle_s,
         CAST(NULL AS float8) AS first_response_s,
         FALSE AS customer_wrote, CAST(NULL AS BIGINT) AS messages_total,
         FALSE AS recontact_24h
  FROM first_start
  UNION ALL
  SELECT tenant, day, department, 0, 1, queue_wait_s, handle_s, first_response_s,
         first_customer_at IS NOT NULL, messages_total, recontact_24h
  FROM attendance
)
SELECT tenant, day, department,
  CAST(sum(started) AS BIGINT) AS attendances_started,
  CAST(sum(finished) AS BIGINT) AS attendances_finished,
  {_summary("queue_wait_s", "wait")},
  {_summary("handle_s", "handle")},
  {_summary("first_response_s", "first_response")},
  CAST({sla!r} AS float8) AS sla_threshold_s,
  count(*) FILTER (WHERE customer_wrote) AS sla_eligible,
  count(*) FILTER (WHERE first_response_s <= {sla!r}) AS sla_met,
  {
        _pct(
            f"count(*) FILTER (WHERE first_response_s <= {sla!r})",
            "count(*) FILTER (WHERE customer_wrote)",
        )
    } AS sla_pct,
  avg(CAST(messages_total AS float8)) AS messages_per_attendance,
  {_pct("count(*) FILTER (WHERE recontact_24h)", "sum(finished)")} AS recontact_pct
FROM stacked
GROUP BY tenant, day, department
"""


def _operator_daily(zone: str) -> str:
    # Concurrency: +1 at each start, -1 at each end, summed in time order per operator;
    # an end sorts before a start at the same instant (a hand-over is not an overlap).
    return f"""
WITH worked AS (
  SELECT tenant, COALESCE(finished_by, operator) AS operator, start_time, end_time,
         handle_s, first_response_s, day
  FROM attendance
),
steps AS (
  SELECT tenant, operator, start_time AS event_at, 1 AS delta FROM worked
  WHERE start_time IS NOT NULL AND end_time IS NOT NULL AND end_time >= start_time
  UNION ALL
  SELECT tenant, operator, end_time, -1 FROM worked
  WHERE start_time IS NOT NULL AND end_time IS NOT NULL AND end_time >= start_time
),
running AS (
  SELECT tenant, operator, event_at,
         sum(delta) OVER (PARTITION BY tenant, operator ORDER BY event_at, delta
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS open_now
  FROM steps
),
peak AS (
  SELECT tenant, operator, CAST({_local("event_at", zone)} AS DATE) AS day,
         max(open_now) AS max_concurrency
  FROM running GROUP BY tenant, operator, CAST({_local("event_at", zone)} AS DATE)
)
SELECT w.tenant, w.day, w.operator,
       count(*) AS attendances,
       sum(w.handle_s) AS handle_total_s,
       avg(w.handle_s) AS avg_handle_s,
       avg(w.first_response_s) AS avg_first_response_s,
       sum(w.handle_s) / NULLIF({_seconds("max(w.end_time)", "min(w.start_time)")}, 0)
         AS avg_concurrency,
       COALESCE(max(p.max_concurrency), 0) AS max_concurrency
FROM worked w
LEFT JOIN peak p ON p.tenant = w.tenant AND COALESCE(p.operator, '') = COALESCE(w.operator, '')
                AND p.day = w.day
GROUP BY w.tenant, w.day, w.operator
"""


_CATEGORY_DAILY = """
SELECT a.tenant, a.day, c.category_id, c.category_name, c.item_id, c.item_name,
       count(DISTINCT a.attendance_number) AS attendances
FROM attendance a JOIN attendance_category c ON c.event_id = a.event_id
GROUP BY a.tenant, a.day, c.category_id, c.category_name, c.item_id, c.item_name
"""


def _message_delivery(zone: str) -> str:
    # A message READ or PLAYED was delivered too, even when its RECEIVED callback is missing.
    return f"""
WITH outbound AS (
  SELECT tenant, message_id, phone, instance_id, COALESCE(moment, received_at) AS event_at,
         CAST(NULL AS VARCHAR) AS error, CAST(NULL AS VARCHAR) AS error_code
  FROM message_sent WHERE message_id IS NOT NULL
  UNION ALL
  SELECT tenant, message_id, phone, instance_id, COALESCE(moment, received_at), error, error_code
  FROM message_delivery_failed WHERE message_id IS NOT NULL
),
sent AS (
  SELECT tenant, message_id, min(phone) AS phone, min(instance_id) AS instance_id,
         min(event_at) AS sent_at,
         min(event_at) FILTER (WHERE error IS NOT NULL) AS failed_at,
         min(error) AS error, min(error_code) AS error_code
  FROM outbound GROUP BY tenant, message_id
),
statuses AS (
  SELECT tenant, message_id,
         min(COALESCE(moment, received_at))
           FILTER (WHERE status IN ('RECEIVED', 'READ', 'PLAYED')) AS delivered_at,
         min(COALESCE(moment, received_at)) FILTER (WHERE status IN ('READ', 'PLAYED'))
           AS read_at,
         min(COALESCE(moment, received_at)) FILTER (WHERE status = 'PLAYED') AS played_at
  FROM message_status
  WHERE message_id IN (SELECT message_id FROM sent)
  GROUP BY tenant, message_id
)
SELECT s.tenant, s.message_id, s.phone, s.instance_id, s.sent_at,
       CAST({_local("s.sent_at", zone)} AS DATE) AS day,
       st.delivered_at, st.read_at, st.played_at, s.failed_at, s.error, s.error_code,
       CASE WHEN s.failed_at IS NOT NULL THEN 'failed'
            WHEN st.read_at IS NOT NULL THEN 'read'
            WHEN st.delivered_at IS NOT NULL THEN 'delivered'
            ELSE 'sent' END AS outcome,
       {_seconds("st.delivered_at", "s.sent_at")} AS deliver_s,
       {_seconds("st.read_at", "s.sent_at")} AS read_s
FROM sent s
LEFT JOIN statuses st ON st.tenant = s.tenant AND st.message_id = s.message_id
"""


_DELIVERY_DAILY = f"""
SELECT tenant, day,
       count(*) AS messages,
       count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
       count(*) FILTER (WHERE read_at IS NOT NULL) AS read,
       count(*) FILTER (WHERE outcome = 'failed') AS failed,
       {_pct("count(*) FILTER (WHERE delivered_at IS NOT NULL)", "count(*)")} AS delivered_pct,
       {_pct("count(*) FILTER (WHERE read_at IS NOT NULL)", "count(*)")} AS read_pct,
       {_pct("count(*) FILTER (WHERE outcome = 'failed')", "count(*)")} AS failure_pct,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY deliver_s) AS p50_deliver_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY read_s) AS p50_read_s
FROM message_delivery
GROUP BY tenant, day
"""

_DELIVERY_ERROR_DAILY = """
SELECT tenant, day, error, error_code, count(*) AS failures
FROM message_delivery WHERE outcome = 'failed'
GROUP BY tenant, day, error, error_code
"""


def _instance_downtime(zone: str) -> str:
    # Any later event of the same instance (a message in or out, a status) shows it back.
    # Disconnects without an instance id cannot be matched and stay open (NULL).
    return f"""
WITH activity AS (
  SELECT tenant, instance_id, COALESCE(moment, received_at) AS event_at, 0 AS is_disconnect,
         CAST(NULL AS VARCHAR) AS event_id, CAST(NULL AS VARCHAR) AS error
  FROM message_received WHERE instance_id IS NOT NULL
  UNION ALL
  SELECT tenant, instance_id, COALESCE(moment, received_at), 0, NULL, NULL
  FROM message_sent WHERE instance_id IS NOT NULL
  UNION ALL
  SELECT tenant, instance_id, COALESCE(moment, received_at), 0, NULL, NULL
  FROM message_delivery_failed WHERE instance_id IS NOT NULL
  UNION ALL
  SELECT tenant, instance_id, COALESCE(moment, received_at), 0, NULL, NULL
  FROM message_status WHERE instance_id IS NOT NULL
  UNION ALL
  SELECT tenant, instance_id, COALESCE(moment, received_at), 1, CAST(event_id AS VARCHAR), error
  FROM instance_disconnected
),
ordered AS (
  -- The earliest later activity, as a running minimum walking back in time: a frame
  -- whose start is fixed is computed incrementally by PostgreSQL, where "1 FOLLOWING
  -- AND UNBOUNDED FOLLOWING" is recomputed for every row (quadratic per instance).
  -- At the same instant, activity counts as after the disconnect.
  SELECT *, min(CASE WHEN is_disconnect = 0 THEN event_at END) OVER (
              PARTITION BY tenant, instance_id ORDER BY event_at DESC, is_disconnect
              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS back_at
  FROM activity
)
SELECT tenant, instance_id, event_id, error, event_at AS disconnected_at,
       CAST({_local("event_at", zone)} AS DATE) AS day,
       CASE WHEN instance_id IS NOT NULL THEN back_at END AS back_at,
       CASE WHEN instance_id IS NOT NULL THEN {_seconds("back_at", "event_at")} END AS downtime_s
FROM ordered WHERE is_disconnect = 1
"""


def _check(time_zone: str, sla_seconds: float) -> None:
    # Both are written into the SQL text, so only well-formed values get that far.
    if not _ZONE_NAME.fullmatch(time_zone):
        raise ValueError(f"not a time zone name: {time_zone!r}")
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone: {time_zone!r}") from exc
    if not (math.isfinite(sla_seconds) and sla_seconds > 0):
        raise ValueError(f"the SLA threshold must be a positive number of seconds: {sla_seconds}")


def definitions(
    time_zone: str = DEFAULT_TIME_ZONE, sla_seconds: float = DEFAULT_SLA_SECONDS
) -> dict[str, str]:
    """Each view's SELECT, in creation order."""
    _check(time_zone, sla_seconds)
    sla = float(sla_seconds)
    return {
        "kpi_settings": _kpi_settings(time_zone, sla),
        "attendance": _attendance(time_zone),
        "kpi_daily": _kpi_daily(time_zone, sla),
        "operator_daily": _operator_daily(time_zone),
        "category_daily": _CATEGORY_DAILY,
        "message_delivery": _message_delivery(time_zone),
        "delivery_daily": _DELIVERY_DAILY,
        "delivery_error_daily": _DELIVERY_ERROR_DAILY,
        "instance_downtime": _instance_downtime(time_zone),
    }


def statements(
    dialect: Dialect,
    *,
    time_zone: str = DEFAULT_TIME_ZONE,
    sla_seconds: float = DEFAULT_SLA_SECONDS,
) -> list[str]:
    """Drop and create every view; safe to run on every start."""
    if dialect not in ("duckdb", "postgresql"):
        raise ValueError(f"unknown dialect: {dialect!r}")
    views = definitions(time_zone, sla_seconds)
    drops = [f"DROP VIEW IF EXISTS {name}" for name in reversed(VIEW_NAMES)]
    # PostgreSQL: a view reads its tables as the role querying it, under that role's
    # row-level security (``isolation.py``); by default it would read them as its owner.
    options = " WITH (security_invoker = true)" if dialect == "postgresql" else ""
    creates = [f"CREATE VIEW {name}{options} AS{sql}" for name, sql in views.items()]
    return drops + creates
