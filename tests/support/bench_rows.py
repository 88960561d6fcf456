"""Rows of ``make bench`` results built by hand, for the tests of its medians and histograms."""

from __future__ import annotations

from typing import Any

from bench.e2e.rows import Row


def step(fraction: float, p99: float, **extra: Any) -> dict[str, Any]:
    return {
        "fraction": fraction,
        "rate": 1000.0,
        "p50_ms": p99 / 4,
        "p99_ms": p99,
        "ok_2xx": 100,
        "non_2xx": 0,
        "codes": {"200": 100},
        "errors": {},
        "client_ok": True,
        "client_note": "",
        **extra,
    }


def row(round_no: int, rps: float, cpu: float | None, p99: float, **kw: Any) -> Row:
    r = Row("ingress", "plug-pipeline", "receive", 1052, round=round_no, **kw)
    r.max_rps, r.cpu_us_per_req = rps, cpu
    r.open_loop = [step(0.25, p99 / 2), step(0.5, p99)]
    return r
