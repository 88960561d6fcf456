"""The report: the tables, the ratios, this round's targets, and bench/RESULTS.md."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.common import machine as common_machine
from bench.common import versions
from bench.e2e.broker import BOOTSTRAP
from bench.e2e.procfs import CLOCK_TICKS
from bench.e2e.rows import Row, by_round
from bench.e2e.settings import (
    BODIES,
    CLIENT_CPU,
    FRACTIONS,
    SERVER_CPU,
    TARGET_CEILING_RATIO,
    TARGET_FINISH40_HANDWRITTEN_RATIO,
    TARGET_GOPEER_RATIO,
    TARGET_HANDWRITTEN_RATIO,
    TARGET_P99_MS,
    TARGET_RSS_MB,
)

# The servers' stacks whose versions the report names.
STACK = ("aiohttp", "aiokafka", "msgspec", "orjson", "uvloop", "fastapi", "pydantic", "uvicorn")


def machine() -> dict[str, Any]:
    """The machine, the stacks' versions, wrk's and Kafka's, and the load at the start."""
    stack = versions(*STACK)
    try:
        import httptools  # noqa: F401

        stack["uvicorn http"] = "httptools"
    except ImportError:
        stack["uvicorn http"] = "h11"
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    go = shutil.which("go")
    go_v = subprocess.run([go, "version"], capture_output=True, text=True).stdout if go else ""
    return {
        **common_machine(),
        "wrk": wrk_v.strip(),
        "go": go_v.strip() or "no Go on PATH",
        "kafka": "Apache Kafka 4.3.1 (KRaft, single node, deploy/kafka-local)",
        "versions": stack,
        "loadavg_at_start": os.getloadavg(),
    }


def fmt_ms(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def fmt_us(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def fmt_pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def per_cpu_second(us_per_req: float) -> float:
    """Webhooks one CPU-second serves at ``us_per_req`` CPU microseconds each."""
    return 1e6 / us_per_req


def md_head(head: str) -> list[str]:
    """A Markdown table's head from its columns' names, ``" | "`` between them."""
    names = head.split(" | ")
    return [md_row(names), "|" + "---|" * len(names)]


def md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(rows: list[Row]) -> list[str]:
    lines = md_head(
        "target | body | max/s | CPU us/req | err | p50/p99 @25% | p50/p99 @50% | "
        "p50/p99 @75% | RSS MB | load | broker | steal | ok"
    )
    for r in rows:
        if r.skipped:
            lines.append(f"| {r.target} | {r.body} | skipped: {r.skipped} |" + " |" * 10)
            continue
        cells = [r.target, f"{r.body} ({r.body_bytes} B)", f"{r.max_rps:,.0f}"]
        cells.append(fmt_us(r.cpu_us_per_req))
        errs = r.wrk.get("non_2xx", 0) + sum(r.wrk.get("socket_errors", {}).values())
        errs += sum(o.get("non_2xx", 0) + sum(o.get("errors", {}).values()) for o in r.open_loop)
        cells.append(str(errs))
        for f in FRACTIONS:
            o = r.at(f)
            if o is None:
                cells.append("-")
                continue
            mark = "" if o.get("client_ok") else "*"
            cells.append(f"{fmt_ms(o.get('p50_ms'))} / {fmt_ms(o.get('p99_ms'))}{mark}")
        cells.append(f"{r.rss_peak_mb:.0f}")
        cells.append(f"{r.load_1m:.1f}")
        cells.append(fmt_s(r.broker_cores))
        cells.append(fmt_pct(r.steal))
        cells.append("FLAGGED" if r.flags else "ok")
        lines.append(md_row(cells))
    return lines


def over_p99_target(p99_ms: float) -> bool:
    return p99_ms > TARGET_P99_MS


def rounds_table(rows: list[Row]) -> list[str]:
    """Each round's own max/s, CPU us/req and p99 at half of max, per median row, and the
    ingress's p99 wait on Kafka at half of max.

    The ingress's p99s over the target say so; the target is only the ingress's.
    """
    lines = md_head("target | body | max/s | CPU us/req | p99 @50% (ms) | Kafka wait p99 @50% (ms)")
    for r in rows:
        if r.skipped:
            continue
        pr, ingress = r.per_round, r.target == "ingress"
        p99s = by_round(pr.get("p99@0.5", []), ".1f", missed=over_p99_target if ingress else None)
        waits = by_round(pr.get("kafka p99@0.5", []), ".1f") if ingress else ""
        max_rps = by_round(pr.get("max_rps", []), ",.0f")
        cpu = by_round(pr.get("cpu_us_per_req", []), ".0f")
        lines.append(md_row([r.target, r.body, max_rps, cpu, p99s, waits]))
    return lines


def detail_table(rows: list[Row]) -> list[str]:
    lines = md_head(
        "round | target | body | load | rate/s | p50 | p90 | p99 | p99.9 | max | "
        "server p50/p99 | Kafka wait p99 / over target | client lag p99 | client CPU | "
        "steal | answers"
    )
    for r in rows:
        for o in r.open_loop:
            codes = " ".join(f"{c}:{n}" for c, n in sorted(o.get("codes", {}).items()))
            errs = " ".join(f"{c}:{n}" for c, n in sorted(o.get("errors", {}).items()))
            cells = [str(r.round), r.target, r.body, f"{o.get('fraction', 0):.0%}"]
            cells.append(f"{o.get('rate', 0):,.0f}")
            cells += [fmt_ms(o.get(k)) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")]
            cells.append(f"{fmt_ms(o.get('service_p50_ms'))} / {fmt_ms(o.get('service_p99_ms'))}")
            cells += [kafka_wait(o), fmt_ms(o.get("lag_p99_ms")), f"{o.get('client_cpu', 0):.0%}"]
            cells += [fmt_pct(o.get("steal")), (codes + (" errors " + errs if errs else "")) or "-"]
            lines.append(md_row(cells))
    return lines


def kafka_wait(step: dict[str, Any]) -> str:
    """The step's p99 wait on Kafka and the share of webhooks that waited over the target."""
    share = step.get("kafka_over_target")
    if share is None:
        return "-"
    return f"{fmt_ms(step.get('kafka_p99_ms'))} / {share:.1%}"


def round_ratios(ing: Row, other: Row, key: str, mine_over_theirs: bool, target: float) -> str:
    """Each round's own ratio of ``key``, the two rows' readings of the same round paired.

    Empty for a single round. ``mine_over_theirs``: the ingress's figure over the
    other's (webhooks/s), else the other's over the ingress's (CPU us per request).
    """
    pairs = list(zip(ing.per_round.get(key, []), other.per_round.get(key, []), strict=False))
    if len(pairs) < 2:
        return ""
    each = [None if not a or not b else (a / b if mine_over_theirs else b / a) for a, b in pairs]
    return f"; rounds {by_round(each, '.2f', missed=lambda v: v < target)}"


def measured_row(rows: list[Row], target: str, body: str) -> Row | None:
    """The row of ``target`` and ``body``, if it was measured (not skipped)."""
    return next((r for r in rows if r.target == target and r.body == body and not r.skipped), None)


def passed(ok: object) -> str:
    return "PASS" if ok else "MISS"


def verdicts(rows: list[Row]) -> list[tuple[str, str, str]]:
    """This round's targets: (what, measured, PASS or MISS), ratios first, then the p99s at
    half of max and the ingress's peak RSS."""
    return [*ratio_verdicts(rows), *p99_verdicts(rows), *rss_verdicts(rows)]


def ratio_verdicts(rows: list[Row]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    compared = (
        ("receive", "gopeer", "the Go peer (one core)", TARGET_GOPEER_RATIO),
        ("receive", "ceiling", "the aiohttp web.Application ceiling", TARGET_CEILING_RATIO),
        ("receive", "handwritten", "hand-written", TARGET_HANDWRITTEN_RATIO),
        ("finish40", "handwritten", "hand-written", TARGET_FINISH40_HANDWRITTEN_RATIO),
    )
    for body, other_name, what, target in compared:
        ing, other = measured_row(rows, "ingress", body), measured_row(rows, other_name, body)
        if ing is None or other is None:
            continue
        if other.max_rps:
            ratio = ing.max_rps / other.max_rps
            shown = f"{ratio:.2f}x ({ing.max_rps:,.0f} / {other.max_rps:,.0f})"
            shown += round_ratios(ing, other, "max_rps", True, target)
            out.append(
                (f">= {target:g}x {what} ({body}, webhooks/s)", shown, passed(ratio >= target))
            )
        if ing.cpu_us_per_req and other.cpu_us_per_req:
            # Webhooks per CPU-second, ours over theirs: their CPU us per request over ours.
            ratio = other.cpu_us_per_req / ing.cpu_us_per_req
            mine, theirs = per_cpu_second(ing.cpu_us_per_req), per_cpu_second(other.cpu_us_per_req)
            shown = (
                f"{ratio:.2f}x ({mine:,.0f} / {theirs:,.0f}; CPU us/req "
                f"{ing.cpu_us_per_req:.0f} vs {other.cpu_us_per_req:.0f})"
            )
            shown += round_ratios(ing, other, "cpu_us_per_req", False, target)
            what_by_cpu = f"by CPU: >= {target:g}x {what} ({body}, webhooks per CPU-second)"
            out.append((what_by_cpu, shown, passed(ratio >= target)))
    return out


def p99_verdicts(rows: list[Row]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for r in rows:
        o = r.at(0.5) if r.target == "ingress" and not r.skipped else None
        if o is None:
            continue
        p99 = o.get("p99_ms", math.nan)
        ok = p99 <= TARGET_P99_MS and o.get("client_ok") and not o.get("non_2xx")
        rounds = r.per_round.get("p99@0.5", [])
        over = by_round(rounds, ".1f", missed=over_p99_target)
        each = f"; rounds {over}" if len(rounds) > 1 else ""
        share = o.get("kafka_over_target")
        if share is not None:
            each += f"; {share:.1%} (median) waited over {TARGET_P99_MS:g} ms on Kafka alone"
        shown = f"{fmt_ms(p99)} ms at {o.get('rate', 0):,.0f}/s{each}"
        out.append((f"p99 <= {TARGET_P99_MS:g} ms at 50% of max ({r.body})", shown, passed(ok)))
    return out


def rss_verdicts(rows: list[Row]) -> list[tuple[str, str, str]]:
    ing_rows = [r for r in rows if r.target == "ingress" and not r.skipped]
    if not ing_rows:
        return []
    peak = max(r.rss_peak_mb for r in ing_rows)
    what = f"peak RSS <= {TARGET_RSS_MB:g} MB (ingress, any body)"
    return [(what, f"{peak:.0f} MB", passed(peak <= TARGET_RSS_MB))]


def ratios(rows: list[Row]) -> list[str]:
    """Per body: the ingress against the others, by webhooks/s and by CPU per request.

    "by CPU" is webhooks per CPU-second, the numerator's over the denominator's: the
    denominator's CPU us per request over the numerator's.
    """
    lines = []
    for body in BODIES:
        ing = next((r for r in rows if r.target == "ingress" and r.body == body), None)
        if ing is None or ing.skipped:
            continue
        parts, by_cpu = [], []
        for other in ("gopeer", "ceiling", "handwritten", "ingress-workers"):
            o = measured_row(rows, other, body)
            if o is None:
                continue
            # The workers row is the numerator (its scaling); the others are baselines.
            num, den = (o, ing) if other == "ingress-workers" else (ing, o)
            name = f"{num.target}/{den.target}"
            if den.max_rps:
                parts.append(f"{name} {num.max_rps / den.max_rps:.2f}x")
            if num.cpu_us_per_req and den.cpu_us_per_req:
                by_cpu.append(f"{name} {den.cpu_us_per_req / num.cpu_us_per_req:.2f}x")
        if parts:
            lines.append(f"- {body}: " + ", ".join(parts))
        if by_cpu:
            lines.append(f"- {body}, by CPU (webhooks per CPU-second): " + ", ".join(by_cpu))
    return lines


def medians_intro(rounds: int) -> list[str]:
    if rounds < 2:
        return []
    return [
        f"Every figure is the median of the row's {rounds} rounds (`--rounds`; the targets'",
        "order reversed every other round); `err` and the flags add up the rounds, `RSS MB`",
        "is the highest round's, `*` marks a step the client missed in any round.",
    ]


def round_trips(measured: dict[str, tuple[float, float]]) -> str:
    shown = {"idle": "as the machine idles", "held": "with the hold"}
    return "; ".join(f"{p50:.3f} / {p99:.3f} ms {shown[k]}" for k, (p50, p99) in measured.items())


def render(
    meta: dict[str, Any],
    rows: list[Row],
    measured: list[Row],
    notes: list[str],
    profile: dict[str, Any] | None,
) -> str:
    """The report: ``rows`` are the medians over the rounds, ``measured`` every round's."""
    m = meta["machine"]
    from pipeline.config import Config

    defaults = Config()
    linger = meta["ingress_env"].get("PLUG_PIPELINE_LINGER_MS", f"{defaults.linger_ms} (default)")
    compression = meta["ingress_env"].get(
        "PLUG_PIPELINE_COMPRESSION", f"{defaults.compression} (default)"
    )
    lines = [
        "# End-to-end benchmark: webhooks through the ingress into Kafka",
        "",
        "Generated by `bench/e2e/` (`make bench`); every run overwrites this file. The raw",
        "figures are in `bench/out/e2e.json`, wrk outputs and server logs in `bench/out/`.",
        "",
        f"- date: {meta['date']}",
        f"- command: `{meta['command']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}",
        f"- Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- {m['kafka']} on {BOOTSTRAP}, not pinned; {m['wrk']}; "
        f"the Go peer built with {m.get('go', '-')}",
        f"- mode: {meta['mode']}; the broker warmed up by "
        f"{meta['durations']['broker_warmup']:g} s of webhooks before the first row "
        f"(`warm_broker`); durations: warm-up {meta['durations']['warmup']:g} s, "
        f"max {meta['durations']['max']:g} s, each open-loop step {meta['durations']['open']:g} s;"
        f" {meta['connections']} connections; {meta['rounds']} round(s) of every row",
        f"- ingress settings: linger {linger} ms, compression {compression}",
        f"- CPU idle: {meta.get('cpu_idle', '-')}; a one-byte round trip between CPU 0 and "
        f"CPU 1 (`bench/wakeup.py`), p50 / p99: {round_trips(meta['round_trip_ms'])}",
        "",
        "## Results",
        "",
        "`max/s`: closed-loop wrk (`-t1 -c64`), 2xx only counted as throughput when `err` is 0.",
        "`CPU us/req`: the server's CPU time (all its threads and processes) over that max run",
        "divided by the requests wrk completed in it; 1e6 / it is webhooks per CPU-second.",
        "`p50/p99 @N%`: latency in ms from each request's scheduled time, open loop at N% of",
        "that target's own max. `*`: the load client could not keep the schedule (see flags).",
        "`err`: non-2xx answers plus socket errors over all runs of the row. `RSS MB`: VmHWM",
        "(summed over the server's processes). `load`: the machine's 1-minute load average",
        "when the row started (above ~2 on 2 cores, other work was competing). `broker`: the",
        "broker's CPU over the max run, in cores (it shares both cores with the server and the",
        "load generator); `steal`: the share of the machine's CPU time the hypervisor gave to",
        "other guests over that run (a row with more than a few % ran on a slower machine).",
        *medians_intro(meta["rounds"]),
        "",
        *table(rows),
        "",
        *(
            ["Each round's own readings (in round order):", "", *rounds_table(rows), ""]
            if meta["rounds"] > 1
            else []
        ),
        "Open-loop steps in detail (ms; `server` runs from the request's actual write, so",
        "`p99` minus `server p99` is roughly what queueing and a late client added; `Kafka",
        "wait`: the ingress's own `plug_kafka_ack_seconds` over the step, from a webhook's",
        "records handed to the producer to the handler seeing their acknowledgement (the",
        "broker's round trip, the wait for the request before it, the event loop's turn), its",
        "p99 and the share of webhooks that waited longer than the p99 target on Kafka alone:",
        "over 1 %, the target was out of reach in that step whatever the rest of the server did;",
        "`steal` as above, over the step), every round's:",
        "",
        *detail_table(measured),
        "",
        "Ratios (max webhooks/s; by CPU: webhooks per CPU-second, from CPU us/req):",
        "",
        *ratios(rows),
        "",
        "## Targets (reported, never failing the run)",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in verdicts(rows)],
        "",
    ]
    flagged = [(r, f) for r in rows for f in r.flags]
    lines += ["## Flags", ""]
    clean = "- none: every answer was 2xx, every 2xx is on its topic, the client kept up"
    lines += [f"- {r.target}/{r.body}: {f}" for r, f in flagged] or [clean]
    row_notes = [f"{r.target}/{r.body}: {n}" for r in rows for n in r.notes]
    if notes or row_notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes + row_notes]]
    if profile:
        lines += [
            "",
            f"## Where the ingress's time goes (py-spy, {profile['body']} body, "
            f"closed loop, {profile['samples']} samples, idle excluded)",
            "",
            "Self time by area (each sample charged to its innermost non-stdlib frame):",
            "",
        ]
        lines += [f"- {k}: {v}%" for k, v in profile["self_by_area"]]
        lines += [
            "",
            "Self time by module (the innermost Python frame; C extensions such as",
            "msgspec, orjson and uvloop are charged to their Python caller):",
            "",
        ]
        lines += [f"- {k}: {v}%" for k, v in profile["self_by_module"]]
        lines += ["", "Self time by function:", ""]
        lines += [f"- {k}: {v}%" for k, v in profile["self_by_function"]]
        lines += ["", f"Flame graph: `bench/out/{profile['svg']}`."]
    lines += [
        "",
        "## Method",
        "",
        f"- Servers run alone on CPU {SERVER_CPU} (`taskset -c {SERVER_CPU}`); wrk and the "
        f"open-loop client on CPU {CLIENT_CPU}. Each (target, body) row starts a fresh server,",
        "  so its peak RSS is that row's. The broker is the run's own, started empty and deleted",
        "  at the end; it is not pinned and shares both cores with everything else.",
        "- CPU us/req: utime + stime from `/proc/<pid>/stat` (clock ticks, "
        f"`SC_CLK_TCK` = {CLOCK_TICKS}),",
        "  summed over the server's process tree (every thread; `--workers` children too),",
        "  read just before and just after the closed-loop max run and divided by the requests",
        "  wrk completed in it. The Kafka broker is the run's own process, outside the server's",
        "  tree: its CPU counts for neither the ingress nor the hand-written service, and wrk's",
        "  does not count either. Each reading is exact to a clock tick per process, a few",
        "  hundredths of a second over the run.",
        "- Bodies: `Generator(seed=1)`: `receive_message_body(size_hint=1024)`,",
        "  `message_status_body()`, `finish_attendance_body(40)`, written to `bench/out/bodies/`.",
        "- Every 2xx of a Kafka-backed target must be on its topic: the topic's end offsets",
        "  after the row (server stopped gracefully) minus before must be at least the number",
        "  of 2xx answers (more is normal: wrk does not count requests cut off at its end).",
        "- The open-loop client (`bench/e2e/openloop.py`, uvloop, raw HTTP/1.1 keep-alive",
        "  connections) dispatches request *i* at `start + i/rate` onto an idle connection or",
        "  queues it; latency runs from the scheduled time, so queueing in the client counts.",
        "  The client flags itself when its schedule lags (p99 > 5 ms), its CPU passes 85 %,",
        "  or it had to drop requests.",
        "- The hand-written baseline (`bench/baselines/handwritten.py`): FastAPI, pydantic v2",
        "  models, `send_and_wait` per request (acks=all, idempotent, aiokafka defaults: no",
        "  linger, no compression), uvicorn with one worker. The ceiling",
        "  (`bench/baselines/ceiling.py`): aiohttp on uvloop, reads the body, answers 200.",
        "- The Go peer (`bench/baselines/gopeer/`, built by `bench/e2e/gopeer.py` with the",
        "  machine's Go, franz-go from the Go module proxy checked against the committed",
        "  `go.sum`): `net/http` + `encoding/json` decoding the body into a struct and",
        "  re-encoding it + franz-go `ProduceSync` per webhook (acks=all, idempotent, franz-go's",
        "  defaults otherwise), `GOMAXPROCS=1`: what one core of a compiled service does.",
        "- On a 2-core machine with a broker on the same cores the figures are a lower bound",
        "  and noisy from run to run (other work on the machine shows in the load average).",
    ]
    return "\n".join(lines) + "\n"


# Sections of RESULTS.md that other benches write (bench/handler.py's, from this marker
# on): a run of `make bench` rewrites its own report and keeps them.
KEPT_MARKER = "<!-- kept by bench/e2e/: sections below are written by other benches -->"


def kept_sections(path: Path) -> str:
    text = path.read_text() if path.exists() else ""
    at = text.find(KEPT_MARKER)
    return "" if at < 0 else "\n" + text[at:]
