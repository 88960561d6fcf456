"""The report's charts: plotly figures as JSON, drawn by plotly.js embedded in the page.

Each function returns a ``Chart``, or ``None`` when there is nothing to draw, so the
page can say so in words instead of showing empty axes. The page draws every chart
from one script at the end of the body: drawn while the page is still being parsed,
a chart would size itself to a grid that does not have its other cells yet. Dates
on axes and the decimal and thousands marks follow the locale (``numbers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from pipeline.report.model import CategoryCount, Day, Distribution, ErrorCount, Funnel, Hour
from pipeline.report.model import InstanceDowntime as Downtime
from pipeline.report.numbers import NumberFormat

# Colour-blind-safe (Okabe-Ito), in the order the series appear.
BLUE, ORANGE, GREEN, VERMILION, SKY, PURPLE, GREY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#56B4E9",
    "#CC79A7",
    "#999999",
)
CONFIG: dict[str, Any] = {"responsive": True, "displayModeBar": False}


@dataclass(frozen=True)
class Chart:
    div_id: str
    figure_json: str  # plotly escapes <, > and / in it, so it is safe inside <script>
    height: int

    def div(self) -> str:
        return f'<div id="{self.div_id}" class="chart" style="height:{self.height}px"></div>'


def _date_axis(fmt: NumberFormat, hourly: bool) -> dict[str, Any]:
    if fmt.locale == "pt-BR":
        tick = "%d/%m %Hh" if hourly else "%d/%m"
    else:
        tick = "%b %d %H:%M" if hourly else "%b %d"
    return {"type": "date", "tickformat": tick, "hoverformat": tick}


def _render(fig: go.Figure, div_id: str, fmt: NumberFormat, height: int = 300) -> Chart:
    fig.update_layout(
        template="plotly_white",
        height=height,
        autosize=True,
        margin={"l": 48, "r": 16, "t": 16, "b": 40},
        legend={"orientation": "h", "y": -0.18, "x": 0},
        separators=fmt.plotly_separators,
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        hovermode="x unified",
    )
    return Chart(div_id, str(fig.to_json()), height)


def volume_by_day(days: list[Day], fmt: NumberFormat) -> Chart | None:
    if not days:
        return None
    x = [d.day.isoformat() for d in days]
    fig = go.Figure(
        [
            go.Bar(name="Started", x=x, y=[d.started for d in days], marker_color=SKY),
            go.Bar(name="Finished", x=x, y=[d.finished for d in days], marker_color=BLUE),
        ]
    )
    axis = _date_axis(fmt, hourly=False)
    fig.update_layout(barmode="group", xaxis={**axis, "dtick": 86_400_000})
    return _render(fig, "chart-volume-day", fmt)


def volume_by_hour(hours: list[Hour], fmt: NumberFormat) -> Chart | None:
    if not hours:
        return None
    x = [h.hour.isoformat() for h in hours]
    fig = go.Figure(
        [
            go.Bar(
                name="Attendances finished",
                x=x,
                y=[h.attendances for h in hours],
                marker_color=BLUE,
                yaxis="y2",
                opacity=0.55,
            ),
            go.Scatter(
                name="Messages in",
                x=x,
                y=[h.messages_in for h in hours],
                mode="lines+markers",
                line={"color": ORANGE},
            ),
            go.Scatter(
                name="Messages out",
                x=x,
                y=[h.messages_out for h in hours],
                mode="lines+markers",
                line={"color": GREEN},
            ),
        ]
    )
    fig.update_layout(
        xaxis=_date_axis(fmt, hourly=True),
        yaxis={"title": {"text": "messages"}, "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "attendances"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "tickmode": "auto",
            "nticks": 5,
        },
        margin={"r": 48},
    )
    return _render(fig, "chart-volume-hour", fmt)


def distribution(dist: Distribution, index: int, fmt: NumberFormat) -> Chart | None:
    if dist.total == 0:
        return None
    colour = (BLUE, GREEN, ORANGE)[index % 3]
    fig = go.Figure(
        go.Bar(
            x=[b.label for b in dist.buckets],
            y=[b.count for b in dist.buckets],
            marker_color=colour,
            name=dist.name,
            hovertemplate="%{x}: %{y:,} attendances<extra></extra>",
        )
    )
    fig.update_layout(xaxis={"type": "category", "tickangle": -40}, showlegend=False)
    return _render(fig, f"chart-dist-{index}", fmt, height=260)


def sla_trend(days: list[Day], sla_seconds: float, fmt: NumberFormat) -> Chart | None:
    measured = [d for d in days if d.sla_pct is not None]
    if not measured:
        return None
    x = [d.day.isoformat() for d in measured]
    fig = go.Figure(
        [
            go.Bar(
                name=f"SLA % (first response ≤ {fmt.duration(sla_seconds)})",
                x=x,
                y=[d.sla_pct for d in measured],
                marker_color=GREEN,
                yaxis="y2",
                opacity=0.35,
                hovertemplate="%{y:.1f}%<extra>SLA</extra>",
            ),
            go.Scatter(
                name="First response p50",
                x=x,
                y=[d.p50_first_response_s for d in measured],
                mode="lines+markers",
                line={"color": BLUE},
            ),
            go.Scatter(
                name="First response p90",
                x=x,
                y=[d.p90_first_response_s for d in measured],
                mode="lines+markers",
                line={"color": VERMILION},
            ),
        ]
    )
    fig.add_hline(
        y=sla_seconds,
        line={"color": GREY, "dash": "dash"},
        annotation_text=f"threshold {fmt.duration(sla_seconds)}",
        annotation_position="top left",
    )
    fig.update_layout(
        xaxis={**_date_axis(fmt, hourly=False), "dtick": 86_400_000},
        yaxis={"title": {"text": "seconds"}, "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "SLA %"},
            "overlaying": "y",
            "side": "right",
            "range": [0, 100],
            "showgrid": False,
            "tickmode": "array",
            "tickvals": [0, 25, 50, 75, 100],
        },
        margin={"r": 48},
    )
    return _render(fig, "chart-sla", fmt)


def categories(items: list[CategoryCount], fmt: NumberFormat) -> Chart | None:
    if not items:
        return None
    ordered = list(reversed(items))  # plotly draws horizontal bars bottom-up
    labels = [f"{c.category}: {c.item}" if c.item else c.category or "(none)" for c in ordered]
    fig = go.Figure(
        go.Bar(
            x=[c.attendances for c in ordered],
            y=labels,
            orientation="h",
            marker_color=PURPLE,
            hovertemplate="%{y}: %{x:,}<extra></extra>",
        )
    )
    fig.update_layout(yaxis={"automargin": True}, hovermode="closest")
    return _render(fig, "chart-categories", fmt, height=max(220, 26 * len(items) + 60))


def funnel(data: Funnel, fmt: NumberFormat) -> Chart | None:
    if data.sent == 0:
        return None
    fig = go.Figure(
        go.Funnel(
            y=["Sent", "Delivered", "Read"],
            x=[data.sent, data.delivered, data.read],
            texttemplate="%{value:,}<br>%{percentInitial:.0%}",
            marker={"color": [SKY, BLUE, GREEN]},
        )
    )
    fig.update_layout(hovermode="closest")
    return _render(fig, "chart-funnel", fmt, height=240)


def _short(label: str, limit: int = 30) -> str:
    """Long labels squeeze the bars out on a phone; the hover shows them whole."""
    limit = max(limit, 8)
    return label if len(label) <= limit else label[: limit - 1] + "…"


def failure_reasons(errors: list[ErrorCount], fmt: NumberFormat) -> Chart | None:
    if not errors:
        return None
    ordered = list(reversed(errors))
    codes = [f" [{e.error_code}]" if e.error_code else "" for e in ordered]
    full = [(e.error or "(no text)") + code for e, code in zip(ordered, codes, strict=True)]
    short = [
        _short(e.error or "(no text)", 30 - len(code)) + code
        for e, code in zip(ordered, codes, strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=[e.failures for e in ordered],
            y=full,
            orientation="h",
            marker_color=VERMILION,
            hovertemplate="%{y}: %{x:,}<extra></extra>",
        )
    )
    # The full texts stay the categories (two may share a shortened form); ticks are short.
    ticks = {"tickmode": "array", "tickvals": full, "ticktext": short}
    fig.update_layout(yaxis={"automargin": True, **ticks}, hovermode="closest")
    return _render(fig, "chart-errors", fmt, height=max(200, 30 * len(errors) + 60))


def downtime(rows: list[Downtime], fmt: NumberFormat) -> Chart | None:
    timed = [r for r in rows if r.total_s is not None]
    if not timed:
        return None
    ordered = list(reversed(timed))
    fig = go.Figure(
        go.Bar(
            x=[(r.total_s or 0.0) / 60 for r in ordered],
            y=[r.instance_id[:12] for r in ordered],
            orientation="h",
            marker_color=ORANGE,
            hovertemplate="%{y}: %{x:,.1f} min<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis={"title": {"text": "minutes down"}}, yaxis={"automargin": True}, hovermode="closest"
    )
    return _render(fig, "chart-downtime", fmt, height=max(200, 28 * len(timed) + 70))
