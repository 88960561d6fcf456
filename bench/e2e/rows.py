"""One (target, body) row of ``make bench``, and the median of several rounds of it.

On this 2-core VM the same tree reads a third more or less from one reading to the
next: 73-119 CPU us a receive webhook within two hours, the ceiling 43-79, the
hand-written service 313-456 (bench/RESULTS.md, "Fifth pass"). A single reading per
target leaves each ratio to whichever phase of the host each side fell in, so
``python -m bench.e2e --rounds N`` measures every row N times, the targets in alternating
order, and reports the median of the rounds with every round's own figures beside it.
"""

from __future__ import annotations

import collections
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The open-loop figures that are medians over rounds; counts are summed instead.
_STEP_MEDIANS = (
    "rate",
    "achieved_rps",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "service_p50_ms",
    "service_p99_ms",
    "lag_p50_ms",
    "lag_p99_ms",
    "client_cpu",
    "steal",
    "kafka_p99_ms",
    "kafka_over_target",
)
_STEP_COUNTS = ("scheduled", "completed", "dropped", "unanswered", "non_2xx", "ok_2xx")


@dataclass
class Row:
    target: str
    label: str
    body: str
    body_bytes: int
    max_rps: float = 0.0
    # The server's CPU time over the max run and per request wrk completed in it
    # (None: no requests, or the server could not be read).
    max_cpu_s: float | None = None
    cpu_us_per_req: float | None = None
    wrk: dict[str, Any] = field(default_factory=dict)
    open_loop: list[dict[str, Any]] = field(default_factory=list)
    rss_peak_mb: float = 0.0
    acked: int = 0
    kafka_delta: dict[str, int] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str = ""
    load_1m: float = 0.0  # the machine's load average when the row started
    # Over the max run: the broker's CPU (in cores: CPU seconds per second), and the share
    # of the machine's CPU time the hypervisor gave to others (steal).
    broker_cores: float | None = None
    steal: float | None = None
    round: int = 1  # which round measured it (1-based); a median row: the rounds it has
    # A median row only: each round's own max/s, CPU us/req, p99 and (the ingress) p99 of
    # the wait on Kafka at each fraction ("p99@0.5", "kafka p99@0.5"), in round order;
    # None where a round could not read it.
    per_round: dict[str, list[float | None]] = field(default_factory=dict)

    def at(self, fraction: float) -> dict[str, Any] | None:
        return next((o for o in self.open_loop if o["fraction"] == fraction), None)


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _summed(dicts: list[dict[str, int]]) -> dict[str, int]:
    total: collections.Counter[str] = collections.Counter()
    for d in dicts:
        total.update(d)
    return dict(total)


def median_step(by_round_no: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One open-loop step (one fraction of max) over the rounds that ran it, by round."""
    steps = list(by_round_no.values())
    out: dict[str, Any] = {"fraction": steps[0]["fraction"], "rounds": len(steps)}
    for key in _STEP_MEDIANS:
        out[key] = _median([s.get(key) for s in steps])
    for key in _STEP_COUNTS:
        out[key] = sum(s.get(key, 0) for s in steps)
    out["codes"] = _summed([s.get("codes", {}) for s in steps])
    out["errors"] = _summed([s.get("errors", {}) for s in steps])
    # The client kept up only if it kept up in every round.
    out["client_ok"] = all(s.get("client_ok", False) for s in steps)
    out["client_note"] = "; ".join(
        f"round {n}: {s['client_note']}" for n, s in by_round_no.items() if s.get("client_note")
    )
    return out


def median_row(rounds: list[Row]) -> Row:
    """The median of one (target, body) row's rounds; counts summed, the RSS peak the max.

    A skipped round is left out of the medians; a row skipped in every round stays
    skipped. Flags and notes keep every round's, prefixed with the round.
    """
    first = rounds[0]
    ran = [r for r in rounds if not r.skipped]
    out = Row(first.target, first.label, first.body, first.body_bytes, round=len(rounds))
    out.flags = [f"round {r.round}: {f}" for r in rounds for f in r.flags]
    out.notes = [f"round {r.round}: {n}" for r in rounds for n in r.notes]
    if not ran:
        out.skipped = first.skipped
        return out
    out.body_bytes = ran[0].body_bytes
    out.max_rps = statistics.median(r.max_rps for r in ran)
    out.max_cpu_s = _median([r.max_cpu_s for r in ran])
    out.cpu_us_per_req = _median([r.cpu_us_per_req for r in ran])
    out.wrk = {
        "non_2xx": sum(r.wrk.get("non_2xx", 0) for r in ran),
        "socket_errors": _summed([r.wrk.get("socket_errors", {}) for r in ran]),
    }
    fractions = sorted({o["fraction"] for r in ran for o in r.open_loop})
    out.open_loop = [
        median_step({r.round: o for r in ran if (o := r.at(f)) is not None}) for f in fractions
    ]
    out.rss_peak_mb = max(r.rss_peak_mb for r in ran)
    out.acked = sum(r.acked for r in ran)
    out.kafka_delta = _summed([r.kafka_delta for r in ran])
    out.load_1m = statistics.median(r.load_1m for r in ran)
    out.broker_cores = _median([r.broker_cores for r in ran])
    out.steal = _median([r.steal for r in ran])
    out.per_round = {
        "max_rps": [None if r.skipped else r.max_rps for r in rounds],
        "cpu_us_per_req": [r.cpu_us_per_req for r in rounds],
    }
    for f in fractions:
        for key, name in (("p99_ms", "p99"), ("kafka_p99_ms", "kafka p99")):
            out.per_round[f"{name}@{f:g}"] = [
                (o.get(key) if (o := r.at(f)) is not None else None) for r in rounds
            ]
    return out


def median_rows(rows: list[Row]) -> list[Row]:
    """One median row per (target, body), in the order each pair was first measured."""
    grouped: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        grouped.setdefault((r.target, r.body), []).append(r)
    return [median_row(sorted(g, key=lambda r: r.round)) for g in grouped.values()]


def by_round(
    values: list[float | None], fmt: str, missed: Callable[[float], bool] | None = None
) -> str:
    """Each round's reading of one figure, in round order ("-": not read).

    A reading that ``missed`` its target says so: rounded to ``fmt`` it could read as
    the target itself (0.449x shown as 0.45x against 0.45x).
    """
    shown = []
    for v in values:
        text = "-" if v is None else format(v, fmt)
        shown.append(f"{text} (miss)" if v is not None and missed and missed(v) else text)
    return " · ".join(shown)


def round_order(names: list[str], round_no: int) -> list[str]:
    """The targets' order in round ``round_no`` (1-based): as given, then reversed, and so on.

    Each target is then measured both early and late in a round, so a slow phase of the
    host that lasts a few minutes does not land on one target every time.
    """
    return list(names) if round_no % 2 else list(reversed(names))
