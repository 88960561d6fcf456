"""One row: a fresh server, wrk's maximum, the open-loop steps at fractions of it, and
the check that every 2xx is on its topic."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict
from http.client import HTTPException
from pathlib import Path
from typing import Any

from bench import histogram
from bench.common import OUT, ROOT, log
from bench.e2e.broker import Broker, end_offsets
from bench.e2e.procfs import cpu_seconds, steal_seconds, stolen_since, vm_hwm_kb
from bench.e2e.pyspy import run_profile
from bench.e2e.report import fmt_pct, fmt_s, fmt_us
from bench.e2e.rows import Row
from bench.e2e.settings import ACK_HISTOGRAM, CLIENT_CPU, FRACTIONS, TARGET_P99_MS
from bench.e2e.targets import Server, Target, probe
from bench.e2e.wrk import Load, WrkResult


def kafka_waits(target: Target) -> histogram.Buckets:
    """The ingress's wait-on-Kafka histogram as it stands ([]: the page could not be read)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{target.port}/metrics", timeout=5) as r:
            return histogram.parse_buckets(r.read().decode(), ACK_HISTOGRAM)
    except (OSError, HTTPException):  # URLError and HTTPError are OSErrors; a cut-off page
        return []


def watch_kafka(ol: dict[str, Any], waited: histogram.Buckets) -> None:
    """The step's wait on Kafka into its figures: the p99, and the share over the target."""
    p99 = histogram.quantile(waited, 0.99)
    ol["kafka_p99_ms"] = None if p99 is None else p99 * 1000
    ol["kafka_over_target"] = histogram.share_above(waited, TARGET_P99_MS / 1000)


def warm_broker(target: Target, body: str, load: Load) -> None:
    """Webhooks through ``target`` for the broker's warm-up before the first row, thrown away.

    A fresh broker spends its first minute of load compiling and settling: in the first
    row measured after its start it took 0.37-0.42 cores, in the rows after 0.11-0.19
    (``broker`` in bench/RESULTS.md), on both cores, so the first row (the ingress's
    receive, the one the ratios are taken from) ran beside a busier broker than the
    rest, the hand-written service's included.
    """
    seconds = load.durations.broker_warmup
    log(f"warming the broker up: {seconds:g} s of {body} webhooks through {target.name}")
    with Server(target, OUT / "server-broker-warmup.log"):
        load.run_wrk(target, body, seconds)


def measure(
    target: Target, body: str, load: Load, profile: bool, broker: Broker, round_no: int
) -> Row:
    """One row: a fresh server probed, warmed up, driven to its max, then stepped through
    the open-loop fractions of it; every 2xx it answered checked against its topics."""
    size = load.body_files[body].stat().st_size
    row = Row(target.name, target.label, body, size, load_1m=os.getloadavg()[0], round=round_no)
    topics = target.topics(body)
    before = end_offsets(topics)
    logfile = OUT / f"server-{target.name}-{body}-r{round_no}.log"
    log(f"round {round_no}: {target.name} / {body}: starting the server")
    with Server(target, logfile) as server:
        acked = probed(row, target, body, load)
        log(f"  warm-up {load.durations.warmup:g} s")
        acked += load.run_wrk(target, body, load.durations.warmup).ok_2xx
        res = max_run(row, server, body, load, broker)
        acked += res.ok_2xx
        for fraction in FRACTIONS:
            acked += open_loop_step(row, target, body, load, fraction, max(1.0, res.rps * fraction))
        if profile:
            acked += run_profile(server.pid, target, body, load)
        row.rss_peak_mb = vm_hwm_kb(server.pid) / 1024
    row.acked = acked
    check_kafka(row, topics, before)
    return row


def probed(row: Row, target: Target, body: str, load: Load) -> int:
    """One webhook to see the server answer as it should; 1 if it answered 2xx, else 0."""
    status, answer = probe(target, load.body_files[body], body)
    if status != 200:
        row.flags.append(f"probe answered {status}: {answer[:200]!r}")
        log(f"  probe answered {status}: {answer[:200]!r}")
        return 0
    if target.name.startswith("ingress") and b"event_id" not in answer:
        row.flags.append("200 without event_id")
    return 1


def max_run(row: Row, server: Server, body: str, load: Load, broker: Broker) -> WrkResult:
    """wrk's closed-loop maximum into ``row``, with the server's and the broker's CPU and the
    machine's steal over it."""
    target, seconds = server.target, load.durations.max
    log(f"  max: wrk -t1 -c{load.conns} -d{seconds:g}s")
    cpu_before = cpu_seconds(server.pid)
    broker_before, steal_before = broker.cpu_seconds(), steal_seconds()
    started = time.monotonic()
    res = load.run_wrk(target, body, seconds)
    cpu_after = cpu_seconds(server.pid)
    elapsed = time.monotonic() - started
    row.broker_cores = (broker.cpu_seconds() - broker_before) / elapsed if broker.pids else None
    row.steal = stolen_since(steal_before, started)
    row.max_rps = res.rps
    if res.requests and cpu_after > cpu_before:
        row.max_cpu_s = cpu_after - cpu_before
        row.cpu_us_per_req = row.max_cpu_s * 1e6 / res.requests
    row.wrk = {k: v for k, v in asdict(res).items() if k != "raw"}
    (OUT / f"wrk-{target.name}-{body}-r{row.round}.txt").write_text(res.raw)
    if res.errors:
        row.flags.append(f"max run: {res.non_2xx} non-2xx, socket errors {res.socket_errors}")
    log(
        f"  max {res.rps:,.0f}/s, {fmt_us(row.cpu_us_per_req)} CPU us/req "
        f"({fmt_s(row.max_cpu_s)} CPU s / {res.requests:,} requests), "
        f"non-2xx {res.non_2xx}, socket errors {res.socket_errors}; broker "
        f"{fmt_s(row.broker_cores)} cores, steal {fmt_pct(row.steal)}"
    )
    return res


def open_loop_step(
    row: Row, target: Target, body: str, load: Load, fraction: float, rate: float
) -> int:
    """One open-loop step at ``rate`` into ``row``; returns the 2xx answers it counted."""
    seconds = load.durations.open
    log(f"  open loop at {fraction:.0%} of max: {rate:,.0f}/s for {seconds:g} s")
    # One process answers every scrape: its histogram holds the step's every webhook.
    waits = kafka_waits(target) if target.name == "ingress" else []
    steal_before, started = steal_seconds(), time.monotonic()
    ol = run_openloop(target, body, load.body_files[body], rate, seconds, load.conns)
    ol["steal"] = stolen_since(steal_before, started)
    if waits:
        watch_kafka(ol, histogram.since(waits, kafka_waits(target)))
    ol["fraction"] = fraction
    row.open_loop.append(ol)
    errs = ol.get("non_2xx", 0) + sum(ol.get("errors", {}).values()) + ol.get("unanswered", 0)
    if errs:
        row.flags.append(
            f"open loop {fraction:.0%}: codes {ol.get('codes')}, errors "
            f"{ol.get('errors')}, unanswered {ol.get('unanswered')}"
        )
    note = f"open loop {fraction:.0%}: {ol.get('client_note')}"
    if not ol.get("client_ok", False):
        row.flags.append(f"{note}: the client could not keep up")
    elif ol.get("client_note"):
        row.notes.append(note)
    log(
        f"    p50 {ol.get('p50_ms', math.nan):.2f} ms p99 {ol.get('p99_ms', math.nan):.2f}"
        f" ms, codes {ol.get('codes')}, client {ol.get('client_note') or 'ok'}"
    )
    ok_2xx: int = ol.get("ok_2xx", 0)
    return ok_2xx


def check_kafka(row: Row, topics: list[str], before: dict[str, int]) -> None:
    """The topics' growth over the row into it, flagged when fewer records than 2xx answers
    reached the main topic or any reached the others (the dead letters)."""
    after = end_offsets(topics)
    row.kafka_delta = {t: after.get(t, 0) - before.get(t, 0) for t in topics}
    if not topics:
        return
    main_topic = topics[0]
    delta = row.kafka_delta[main_topic]
    if delta < row.acked:
        row.flags.append(f"LOST: {row.acked} answers 2xx but only {delta} records on {main_topic}")
    for t in topics[1:]:
        if row.kafka_delta[t]:
            row.flags.append(f"{row.kafka_delta[t]} records on {t}")
    log(f"  Kafka: {row.acked} acked, {delta} new records on {main_topic}")


def measure_or_skip(
    target: Target, body: str, load: Load, profile: bool, broker: Broker, round_no: int
) -> Row:
    """``measure``, or a skipped row saying why the server could not be measured."""
    try:
        return measure(target, body, load, profile, broker, round_no)
    except RuntimeError as exc:
        log(f"round {round_no}: {target.name}/{body}: {exc}")
        row = Row(target.name, target.label, body, 0, skipped=str(exc), round=round_no)
        row.flags.append(str(exc))
        return row


def run_openloop(
    target: Target, body: str, body_file: Path, rate: float, duration: float, conns: int
) -> dict[str, Any]:
    cmd = [
        "taskset", "-c", CLIENT_CPU, sys.executable, "-m", "bench.e2e", "_openloop",
        "--port", str(target.port), "--path", target.path(body), "--body-file", str(body_file),
        "--rate", f"{rate:.1f}", "--duration", f"{duration:g}", "--conns", str(conns),
    ]  # fmt: skip
    # From the repository's root, where ``bench`` is importable whatever the caller's cwd.
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    try:
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        log(f"open-loop client failed: {proc.stderr.strip()[-500:]}")
        failed = {"client-failed": 1}
        return {
            "rate": rate,
            "errors": failed,
            "client_ok": False,
            "client_note": "the client failed",
        }
    return result


def write_bodies() -> dict[str, Path]:
    from pipeline.simulate.generator import Generator

    gen = Generator(seed=1)
    made = {
        "receive": gen.receive_message_body(size_hint=1024),
        "status": gen.message_status_body(),
        "finish40": gen.finish_attendance_body(40),
    }
    folder = OUT / "bodies"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, body in made.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_bytes(body)
    return paths
