"""``Report`` -> one self-contained HTML file: plotly.js inlined, no network loads.

Layout: headline cards, then sections that stack on a phone and sit side by side
on a desktop. A section without data says so in a sentence. Each headline value
and each daily-table cell carries ``data-figure`` (and the table row ``data-day``)
so a test can find the number a person sees.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from html import escape

import orjson
from plotly.offline import get_plotlyjs

from pipeline.report import charts
from pipeline.report.model import Report
from pipeline.report.numbers import NumberFormat

_CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --card:#fff;
        --accent:#0072B2; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
header { background:var(--card); border-bottom:1px solid var(--line); padding:16px 20px; }
h1 { margin:0 0 4px; font-size:1.35rem; }
h2 { margin:0 0 10px; font-size:1.05rem; }
.meta { color:var(--muted); font-size:.85rem; }
main { padding:16px; max-width:1280px; margin:0 auto; }
.cards { display:grid; gap:10px; grid-template-columns:repeat(auto-fill,minmax(150px,1fr));
         margin-bottom:16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px;
        padding:10px 12px; }
.card .label { color:var(--muted); font-size:.78rem; text-transform:uppercase;
               letter-spacing:.03em; }
.card .value { font-size:1.45rem; font-weight:600; margin-top:2px; }
.card .note { color:var(--muted); font-size:.75rem; }
.grid { display:grid; gap:16px;
        grid-template-columns:repeat(auto-fit,minmax(min(100%,460px),1fr)); }
section { background:var(--card); border:1px solid var(--line); border-radius:8px;
          padding:14px; margin-bottom:16px; min-width:0; }
.grid.three { grid-template-columns:repeat(auto-fit,minmax(min(100%,300px),1fr)); }
.grid section { margin-bottom:0; }
.grid + section, section + .grid, .grid + .grid { margin-top:16px; }
.empty { color:var(--muted); font-style:italic; margin:8px 0; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-size:.88rem; }
th, td { padding:6px 8px; border-bottom:1px solid var(--line); text-align:right;
         white-space:nowrap; }
th:first-child, td:first-child { text-align:left; }
th { color:var(--muted); font-weight:600; }
footer { color:var(--muted); font-size:.8rem; padding:8px 20px 24px; max-width:1280px;
         margin:0 auto; }
dl { display:grid; grid-template-columns:max-content 1fr; gap:2px 12px; }
dt { font-weight:600; }
dd { margin:0; }
@media (max-width:600px) { main { padding:10px; } .card .value { font-size:1.2rem; }
  dl { grid-template-columns:1fr; } }
"""

_DEFINITIONS = (
    ("Queue wait", "attendance start − the customer's request time"),
    ("Handle time", "attendance end − attendance start"),
    (
        "First response",
        "first operator message (not automatic) at or after the customer's "
        "first message in the transcript − that customer message",
    ),
    (
        "SLA %",
        "attendances whose first response came within the threshold, out of those in "
        "which the customer wrote (unanswered ones count as missed)",
    ),
    (
        "Recontact %",
        "finished attendances after which the same customer asked again within 24 h",
    ),
    ("Transferred", "the operator who started the attendance is not the one who finished it"),
    (
        "Concurrency",
        "attendances an operator had open at once: peak, and average over the "
        "span from their first start to their last end of the day",
    ),
    ("Delivered / read", "outbound messages with a RECEIVED (or later) / READ or PLAYED status"),
)


def _card(label: str, value: str, figure: str, note: str = "") -> str:
    note_html = f'<div class="note">{escape(note)}</div>' if note else ""
    return (
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value" data-figure="{figure}">{escape(value)}</div>{note_html}</div>'
    )


class _Charts:
    """Collects the page's charts: a placeholder where each goes, one script at the end."""

    def __init__(self) -> None:
        self.charts: list[charts.Chart] = []

    def __call__(self, chart: charts.Chart | None) -> str | None:
        if chart is None:
            return None
        self.charts.append(chart)
        return chart.div()

    def script(self) -> str:
        figures = ",".join(f'"{c.div_id}":{c.figure_json}' for c in self.charts)
        config = orjson.dumps(charts.CONFIG).decode()
        return (
            f"<script>(function(){{var figures={{{figures}}};var config={config};"
            "for(var id in figures){Plotly.newPlot(id,figures[id].data,"
            "figures[id].layout,config);}})();</script>"
        )


def _section(title: str, body: str | None, empty: str) -> str:
    inner = body if body is not None else f'<p class="empty">{escape(empty)}</p>'
    return f"<section><h2>{escape(title)}</h2>{inner}</section>"


def _table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'  # noqa: E501


def _cells(values: list[str]) -> str:
    return "".join(f"<td>{escape(v)}</td>" for v in values)


def _headline(report: Report, fmt: NumberFormat) -> str:
    h = report.headline
    return '<div class="cards">' + "".join(
        [
            _card("Attendances finished", fmt.number(h.attendances_finished), "attendances_finished"),  # noqa: E501
            _card("Attendances started", fmt.number(h.attendances_started), "attendances_started"),
            _card("Avg queue wait", fmt.duration(h.avg_wait_s), "avg_wait"),
            _card("Avg handle time", fmt.duration(h.avg_handle_s), "avg_handle"),
            _card("Avg first response", fmt.duration(h.avg_first_response_s), "avg_first_response",
                  f"p90 {fmt.duration(h.p90_first_response_s)}"),
            _card("SLA", fmt.percent(h.sla_pct), "sla_pct",
                  f"first response ≤ {fmt.duration(report.sla_seconds)}"),
            _card("Recontact in 24 h", fmt.percent(h.recontact_pct), "recontact_pct"),
            _card("Transferred", fmt.percent(h.transferred_pct), "transferred_pct"),
            _card("Messages / attendance", fmt.number(h.messages_per_attendance, 1),
                  "messages_per_attendance"),
            _card("Messages sent", fmt.number(h.messages_out), "messages_out",
                  f"read {fmt.percent(h.read_pct)}"),
            _card("Delivery failures", fmt.percent(h.failure_pct), "failure_pct"),
        ]
    ) + "</div>"  # fmt: skip


def _daily_table(report: Report, fmt: NumberFormat) -> str | None:
    if not report.days:
        return None
    rows = [
        f'<tr data-day="{d.day.isoformat()}"><td>{escape(fmt.date(d.day))}</td>'
        f'<td data-figure="started">{fmt.number(d.started)}</td>'
        f'<td data-figure="finished">{fmt.number(d.finished)}</td>'
        f'<td data-figure="sla_pct">{escape(fmt.percent(d.sla_pct))}</td>'
        f"<td>{escape(fmt.duration(d.p50_first_response_s))}</td>"
        f"<td>{escape(fmt.duration(d.p90_first_response_s))}</td></tr>"
        for d in report.days
    ]
    return _table(["Day", "Started", "Finished", "SLA", "First resp. p50", "p90"], rows)


def _departments(report: Report, fmt: NumberFormat) -> str | None:
    if not report.departments:
        return None
    rows = [
        "<tr>"
        + _cells(
            [
                d.department or "(none)",
                fmt.number(d.started),
                fmt.number(d.finished),
                fmt.duration(d.avg_wait_s),
                fmt.duration(d.avg_handle_s),
                fmt.duration(d.avg_first_response_s),
                fmt.percent(d.sla_pct),
                fmt.percent(d.recontact_pct),
            ]
        )
        + "</tr>"
        for d in report.departments
    ]
    headers = ["Department", "Started", "Finished", "Wait", "Handle", "First resp.", "SLA"]
    return _table([*headers, "Recontact"], rows)


def _operators(report: Report, fmt: NumberFormat) -> str | None:
    if not report.operators:
        return None
    rows = [
        "<tr>"
        + _cells(
            [
                o.operator or "(unknown)",
                fmt.number(o.attendances),
                fmt.duration(o.avg_handle_s),
                fmt.duration(o.avg_first_response_s),
                fmt.percent(o.sla_pct),
                fmt.number(o.transferred),
                fmt.number(o.avg_concurrency, 1),
                fmt.number(o.max_concurrency),
            ]
        )
        + "</tr>"
        for o in report.operators
    ]
    headers = ["Operator", "Attendances", "Handle", "First resp.", "SLA", "Transferred"]
    return _table([*headers, "Avg open", "Peak open"], rows)


def _downtime(report: Report, fmt: NumberFormat, draw: _Charts) -> str | None:
    if not report.downtime and not report.unmatched_disconnects:
        return None
    zone = zoneinfo.ZoneInfo(report.time_zone)
    rows = [
        "<tr>"
        + _cells(
            [
                r.instance_id[:16],
                fmt.number(r.disconnects),
                fmt.duration(r.total_s),
                fmt.duration(r.longest_s),
                fmt.number(r.still_down),
                fmt.timestamp(r.last_disconnect.astimezone(zone) if r.last_disconnect else None),
                r.last_error,
            ]
        )
        + "</tr>"
        for r in report.downtime
    ]
    headers = ["Instance", "Disconnects", "Down", "Longest", "Not back", "Last", "Last error"]
    chart = draw(charts.downtime(report.downtime, fmt)) or ""
    note = ""
    if report.unmatched_disconnects:
        note = (
            f'<p class="empty">{fmt.number(report.unmatched_disconnects)} disconnect(s) '
            "without an instance id could not be matched.</p>"
        )
    return chart + _table(headers, rows) + note


def _period(report: Report, fmt: NumberFormat) -> str:
    first = report.filters.since or (report.days[0].day if report.days else None)
    last = report.filters.until or (report.days[-1].day if report.days else None)
    if first is None and last is None:
        return "no data"
    return f"{fmt.date(first)} – {fmt.date(last)}"


def render(report: Report, fmt: NumberFormat, generated_at: dt.datetime) -> str:
    """The whole page."""
    draw = _Charts()
    tenants = report.filters.tenant or ", ".join(report.tenants) or "no tenant with data"
    dists = [
        _section(
            d.name, draw(charts.distribution(d, i, fmt)), f"No {d.name.lower()} in this period."
        )
        for i, d in enumerate(report.distributions)
    ]
    definitions = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in _DEFINITIONS)
    f = report.funnel
    funnel_note = (
        f'<p class="meta">Failed: {fmt.number(f.failed)} · p50 time to deliver '
        f"{escape(fmt.duration(f.p50_deliver_s))} · p50 time to read "
        f"{escape(fmt.duration(f.p50_read_s))}</p>"
    )
    funnel_chart = draw(charts.funnel(f, fmt))
    body = [
        "<header><h1>Contact centre report</h1>",
        f'<div class="meta">Tenant: {escape(tenants)} · Period: {escape(_period(report, fmt))} '
        f"· Days in {escape(report.time_zone)} · SLA threshold "
        f"{escape(fmt.duration(report.sla_seconds))} · Generated "
        f"{escape(fmt.timestamp(generated_at))} UTC</div></header>",
        "<main>",
        _headline(report, fmt),
        '<div class="grid">',
        _section("Attendances per day", draw(charts.volume_by_day(report.days, fmt)),
                 "No attendances in this period."),
        _section("Volume per hour", draw(charts.volume_by_hour(report.hours, fmt)),
                 "No activity in this period."),
        "</div>",
        '<div class="grid three">', *dists, "</div>",
        '<div class="grid">',
        _section("SLA trend", draw(charts.sla_trend(report.days, report.sla_seconds, fmt)),
                 "No first responses to measure in this period."),
        _section("Days", _daily_table(report, fmt), "No attendances in this period."),
        "</div>",
        _section("Departments", _departments(report, fmt), "No departments in this period."),
        _section("Operators", _operators(report, fmt), "No operators in this period."),
        '<div class="grid">',
        _section("Category mix", draw(charts.categories(report.categories, fmt)),
                 "No categorised attendances in this period."),
        _section("Delivery funnel",
                 funnel_chart + funnel_note if funnel_chart else None,
                 "No outbound messages in this period."),
        _section("Delivery failure reasons", draw(charts.failure_reasons(report.errors, fmt)),
                 "No delivery failures in this period."),
        "</div>",
        _section("Instance downtime", _downtime(report, fmt, draw),
                 "No instance disconnected in this period."),
        "</main>",
        f"<footer><h2>Definitions</h2><dl>{definitions}</dl>"
        "<p>Every figure is defined in docs/analytics.md of plug-pipeline.</p></footer>",
        draw.script(),
    ]  # fmt: skip
    lang = "pt-BR" if fmt.locale == "pt-BR" else "en"
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Contact centre report</title>"
        f"<style>{_CSS}</style><script>{get_plotlyjs()}</script></head>"
        f"<body>{''.join(body)}</body></html>"
    )
