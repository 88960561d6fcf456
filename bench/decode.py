"""Decode + normalise throughput per webhook kind: the pipeline beside pydantic v2.

``make bench-decode`` runs this. Each case times ``pipeline.ingest.ingest`` (raw body
-> Record with the encoded envelope) and ``bench/pydantic_baseline.ingest`` (the
same work written by hand with pydantic v2) on one body, in the same run, and
prints MB/s and events/s for both and their ratio. A benchmark, not a test: it
prints figures and never fails on a number.

    .venv/bin/python bench/decode.py [--quick] [--profile] [--repeat N] [--seconds S]

Figures are also written to ``bench/out/decode.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec
import pydantic
import pydantic_core

from bench import common, pydantic_baseline
from pipeline.events import normalise
from pipeline.events.models import Envelope
from pipeline.ingest import event_id, ingest
from pipeline.plug import wire
from pipeline.plug.chat import decode_hook
from pipeline.simulate.generator import Generator
from pipeline.webhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
SEED_EXAMPLE = ROOT / "tests/fixtures/plug/seed/finish-attendance-example-2.json"
OUT = ROOT / "bench/out/decode.json"
TENANT = "bench"
PREFIX = "plug"
RECEIVED_AT = 1_735_736_400_000
GOAL_CASE = "finish-attendance 40 msgs"
GOAL_MB_S = 250.0
GOAL_RATIO = 2.5

Ingest = Callable[[Webhook, str, bytes, int, str], Any]


@dataclass
class Case:
    name: str
    webhook: Webhook
    body: bytes
    messages: int = 0  # chat entries, for attendance bodies


@dataclass
class Timing:
    iterations: int
    ns: list[int] = field(default_factory=list)  # one total per repeat

    def per_call_ns(self, total: float) -> float:
        return total / self.iterations

    @property
    def best_ns(self) -> float:
        return self.per_call_ns(min(self.ns))

    @property
    def median_ns(self) -> float:
        return self.per_call_ns(statistics.median(self.ns))


# --- bodies --------------------------------------------------------------------------------


def _chat_size(body: bytes) -> int:
    chat = msgspec.json.decode(body).get("chat") or {}
    return len(chat)


def _representative(items: list[tuple[Webhook, bytes]], webhook: Webhook) -> bytes | None:
    """The median-sized body of one kind in the stream."""
    bodies = sorted((b for w, b in items if w is webhook), key=len)
    return bodies[len(bodies) // 2] if bodies else None


def cases() -> list[Case]:
    """One median-sized body of each kind from the stream, plus the helpers' bodies."""
    gen = Generator(seed=1)
    items = gen.take(600)
    stream: dict[Webhook, Case] = {}
    for webhook in Webhook:
        body = _representative(items, webhook)
        if body is None:  # a rare kind: look further along the stream
            body = _representative(gen.take(3000), webhook)
        if body is None:
            print(f"warning: no {webhook.value} body in the stream", file=sys.stderr)
            continue
        attendance = webhook in (Webhook.FINISH_ATTENDANCE, Webhook.START_ATTENDANCE)
        stream[webhook] = Case(webhook.value, webhook, body, _chat_size(body) if attendance else 0)
    helpers = Generator(seed=1)
    extra: dict[Webhook, list[Case]] = {
        Webhook.RECEIVE_MESSAGE: [
            Case(
                "receive-message 1 KiB text",
                Webhook.RECEIVE_MESSAGE,
                helpers.receive_message_body(),
            )
        ],
        Webhook.MESSAGE_STATUS: [
            Case("message-status (helper)", Webhook.MESSAGE_STATUS, helpers.message_status_body())
        ],
        Webhook.FINISH_ATTENDANCE: [
            Case(
                f"finish-attendance {n} msgs",
                Webhook.FINISH_ATTENDANCE,
                helpers.finish_attendance_body(n),
                n,
            )
            for n in (40, 400)
        ],
    }
    # The same 40 messages pretty-printed: not compact, so the chat splitter's text scan runs.
    compact40 = extra[Webhook.FINISH_ATTENDANCE][0].body
    pretty40 = json.dumps(json.loads(compact40), indent=2, ensure_ascii=False).encode()
    extra[Webhook.FINISH_ATTENDANCE].insert(
        1, Case("finish-attendance 40 pretty", Webhook.FINISH_ATTENDANCE, pretty40, 40)
    )
    seed = SEED_EXAMPLE.read_bytes()
    extra[Webhook.FINISH_ATTENDANCE].append(
        Case("finish-attendance seed ex. 2", Webhook.FINISH_ATTENDANCE, seed, _chat_entries(seed))
    )
    order = [
        Webhook.RECEIVE_MESSAGE,
        Webhook.SENDING_MESSAGE,
        Webhook.MESSAGE_DELIVERY_ERROR,
        Webhook.MESSAGE_STATUS,
        Webhook.WHEN_DISCONNECTING,
        Webhook.START_ATTENDANCE,
        Webhook.FINISH_ATTENDANCE,
    ]
    found: list[Case] = []
    for webhook in order:
        if webhook in stream:
            found.append(stream[webhook])
        found += extra.get(webhook, [])
    return found


def _chat_entries(body: bytes) -> int:
    """Chat entries counting repeated keys (the seed example repeats one)."""
    attendance = msgspec.json.Decoder(wire.AttendanceWebhook, dec_hook=decode_hook)
    return len(attendance.decode(body).chat)


# --- equivalence -----------------------------------------------------------------------------


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'pydantic' if k not in a else 'ours'}")
            else:
                out += _diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items (ours) vs {len(b)} (pydantic)"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]")
        ]
    if a != b or type(a) is not type(b):
        return [f"{path}: {a!r} (ours) vs {b!r} (pydantic)"]
    return []


def _main_fields(data: dict[str, Any]) -> dict[str, Any]:
    messages = data.get("messages") or []
    return {
        "attendance_number": data.get("attendance_number"),
        "status": data.get("status"),
        "categories": data.get("categories"),
        "unique_message_ids": sorted({str(m.get("message_id")) for m in messages}),
        "message_ids": data.get("message_ids"),
        "moment": data.get("moment"),
    }


def _statuses(data: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((str(m.get("message_id")), str(m.get("status"))) for m in data["messages"])


def check(case: Case) -> tuple[bool, list[str]]:
    """Whether our record and the baseline's agree for one body, and what differs."""
    ours = ingest(case.webhook, TENANT, case.body, RECEIVED_AT, PREFIX)
    base = pydantic_baseline.ingest(case.webhook, TENANT, case.body, RECEIVED_AT, PREFIX)
    problems: list[str] = []
    for name in ("topic", "key", "headers", "event_id"):
        if getattr(ours, name) != getattr(base, name):
            problems.append(f"record {name} differs")
    a, b = msgspec.json.decode(ours.value), msgspec.json.decode(base.value)
    problems += _diff(_main_fields(a["data"]), _main_fields(b["data"]), "main")
    notes: list[str] = []
    n_ours = len(a["data"].get("messages") or [])
    n_base = len(b["data"].get("messages") or [])
    if n_ours != n_base:
        # Expected when a chat key repeats: the baseline's dict keeps the last entry only.
        notes.append(
            f"expected: ours keeps {n_ours} chat entries, the baseline's dict {n_base} "
            "(a repeated chat key; a dict keeps only the last)"
        )
        missing = set(_statuses(b["data"])) - set(_statuses(a["data"]))
        if missing:
            problems.append(f"baseline statuses not in ours: {sorted(missing)}")
    else:
        full = _diff(a, b)
        problems += [f"value: {d}" for d in full[:5]]
        if len(full) > 5:
            problems.append(f"value: ... {len(full) - 5} more differences")
        if not full:
            notes.append("whole envelope equal")
    return not problems, problems + notes


# --- timing ----------------------------------------------------------------------------------


def _run(fn: Ingest, case: Case, n: int) -> int:
    webhook, body = case.webhook, case.body
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(n):
        fn(webhook, TENANT, body, RECEIVED_AT, PREFIX)
    return clock() - start


def _calibrate(fn: Ingest, case: Case, seconds: float) -> int:
    """Warm up for about 0.1 s (at least 20 calls); iterations for ``seconds`` a repeat."""
    n, spent = 20, 0
    total_calls = 0
    while spent < 100_000_000:
        spent += _run(fn, case, n)
        total_calls += n
        n *= 2
    per_call = spent / total_calls
    return max(1, round(seconds * 1e9 / per_call))


def measure(case: Case, repeat: int, seconds: float) -> tuple[Timing, Timing]:
    ours = Timing(_calibrate(ingest, case, seconds))
    base = Timing(_calibrate(pydantic_baseline.ingest, case, seconds))
    for _ in range(repeat):  # interleaved, so drift hits both alike
        ours.ns.append(_run(ingest, case, ours.iterations))
        base.ns.append(_run(pydantic_baseline.ingest, case, base.iterations))
    return ours, base


def mb_s(size: int, per_call_ns: float) -> float:
    return size / per_call_ns * 1e3  # bytes/ns -> MB/s (1 MB = 1e6 bytes)


def ev_s(per_call_ns: float) -> float:
    return 1e9 / per_call_ns


# --- output ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """bench.common's machine and the decoders' versions, in decode.json's own keys."""
    base = common.machine()
    return {
        "cpu": base["cpu"],
        "cpus": str(base["cores"]),
        "python": base["python"],
        "implementation": platform.python_implementation(),
        "msgspec": msgspec.__version__,
        "pydantic": pydantic.VERSION,
        "pydantic_core": pydantic_core.__version__,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'case':<30} {'bytes':>8} {'msgs':>4} | {'ours MB/s':>16} {'ours ev/s':>9} | "
        f"{'pydantic MB/s':>16} {'pyd ev/s':>9} | {'ratio':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        ours = f"{r['ours_mb_s']:.1f} ({r['ours_mb_s_median']:.1f})"
        base = f"{r['pydantic_mb_s']:.1f} ({r['pydantic_mb_s_median']:.1f})"
        lines.append(
            f"{r['case']:<30} {r['bytes']:>8} {r['messages'] or '':>4} | "
            f"{ours:>16} {r['ours_ev_s']:>9.0f} | {base:>16} {r['pydantic_ev_s']:>9.0f} | "
            f"{r['ratio']:>5.2f}x"
        )
    return "\n".join(lines)


def _per_call_us(fn: Callable[[], object], seconds: float = 0.05) -> float:
    fn()
    n, best = max(1, int(seconds * 1e6 / max(1.0, _once_us(fn)))), float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / n / 1e3)
    return best


def _once_us(fn: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e3


def stages(case: Case) -> None:
    """Each step of ``ingest`` timed alone on one finish-attendance body (best of 5)."""
    attendance = msgspec.json.Decoder(
        wire.AttendanceWebhook, float_hook=Decimal, dec_hook=decode_hook
    )
    without_chat = msgspec.json.Decoder(_WithoutChat, float_hook=Decimal)
    encoder = msgspec.json.Encoder(decimal_format="number")
    att = attendance.decode(case.body)
    messages = normalise.transcript(att.chat)
    finished = normalise.attendance_finished(att.attendance, messages)
    envelope = Envelope(
        event_id="0" * 32,
        event_type="attendance.finished",
        tenant=TENANT,
        received_at=RECEIVED_AT,
        data=finished,
    )
    steps: list[tuple[str, Callable[[], object]]] = [
        ("ingest (all)", lambda: ingest(case.webhook, TENANT, case.body, RECEIVED_AT, PREFIX)),
        ("decode AttendanceWebhook", lambda: attendance.decode(case.body)),
        ("  of which the attendance (chat skipped)", lambda: without_chat.decode(case.body)),
        ("normalise.transcript", lambda: normalise.transcript(att.chat)),
        ("  of which normalise.content", lambda: [normalise.content(m) for m in att.chat.values()]),
        (
            "normalise.attendance_finished",
            lambda: normalise.attendance_finished(att.attendance, messages),
        ),
        ("encode envelope", lambda: encoder.encode(envelope)),
        ("event_id (SHA-256 of body)", lambda: event_id(TENANT, case.webhook, case.body)),
    ]
    print(
        f"\nstages of ingest on {case.name} ({len(case.body)} bytes in, "
        f"{len(encoder.encode(envelope))} bytes out), best of 5:"
    )
    total = _per_call_us(steps[0][1])
    for label, fn in steps:
        us = total if label == "ingest (all)" else _per_call_us(fn)
        print(f"  {label:<40} {us:8.1f} us  {100 * us / total:5.1f}%")


class _WithoutChat(msgspec.Struct):
    """The attendance alone, the chat skipped: what decoding the messages adds."""

    attendance: wire.AttendanceWire


def profile(case: Case, seconds: float) -> None:
    from pyinstrument import Profiler

    stages(case)
    n = _calibrate(ingest, case, seconds)
    profiler = Profiler(interval=0.0002)
    profiler.start()
    _run(ingest, case, n)
    profiler.stop()
    print(f"\npyinstrument: pipeline.ingest.ingest on {case.name}, {n} calls\n")
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (~0.03 s a repeat)")
    parser.add_argument("--profile", action="store_true", help=f"pyinstrument over {GOAL_CASE}")
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats; best and median")
    parser.add_argument("--seconds", type=float, default=None, help="target seconds a repeat")
    args = parser.parse_args(argv)
    seconds = args.seconds or (0.03 if args.quick else 0.15)

    info = machine()
    print(
        f"machine: {info['cpu']} ({info['cpus']} cpus), {info['implementation']} "
        f"{info['python']}, msgspec {info['msgspec']}, pydantic {info['pydantic']} "
        f"(core {info['pydantic_core']})"
    )
    all_cases = cases()

    print("\nsanity: pipeline vs pydantic baseline output")
    checks: dict[str, list[str]] = {}
    for case in all_cases:
        same, found = check(case)
        checks[case.name] = found
        print(f"  {case.name:<30} {'equivalent' if same else 'DIFFERS'}")
        for line in found:
            print(f"      {line}")

    rows: list[dict[str, Any]] = []
    print(f"\ntiming: best of {args.repeat} repeats (median in brackets), ~{seconds}s a repeat\n")
    for case in all_cases:
        ours, base = measure(case, args.repeat, seconds)
        size = len(case.body)
        rows.append(
            {
                "case": case.name,
                "webhook": case.webhook.value,
                "bytes": size,
                "messages": case.messages,
                "ours_iterations": ours.iterations,
                "ours_ns_per_call": ours.best_ns,
                "ours_ns_per_call_median": ours.median_ns,
                "ours_mb_s": mb_s(size, ours.best_ns),
                "ours_mb_s_median": mb_s(size, ours.median_ns),
                "ours_ev_s": ev_s(ours.best_ns),
                "pydantic_iterations": base.iterations,
                "pydantic_ns_per_call": base.best_ns,
                "pydantic_ns_per_call_median": base.median_ns,
                "pydantic_mb_s": mb_s(size, base.best_ns),
                "pydantic_mb_s_median": mb_s(size, base.median_ns),
                "pydantic_ev_s": ev_s(base.best_ns),
                "ratio": base.best_ns / ours.best_ns,
                "checks": checks[case.name],
            }
        )
    print(table(rows))

    goal = next((r for r in rows if r["case"] == GOAL_CASE), None)
    if goal is not None:
        mb_ok = "met" if goal["ours_mb_s"] >= GOAL_MB_S else "NOT met"
        ratio_ok = "met" if goal["ratio"] >= GOAL_RATIO else "NOT met"
        print(
            f"\ngoal ({GOAL_CASE}): >= {GOAL_MB_S:.0f} MB/s: "
            f"{goal['ours_mb_s']:.1f} MB/s, {mb_ok}; "
            f">= {GOAL_RATIO}x pydantic: {goal['ratio']:.2f}x, {ratio_ok}"
        )

    OUT.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": info,
        "repeat": args.repeat,
        "seconds_per_repeat": seconds,
        "goal": {"case": GOAL_CASE, "mb_s": GOAL_MB_S, "ratio": GOAL_RATIO},
        "cases": rows,
    }
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nfigures written to {OUT.relative_to(ROOT)}")

    if args.profile:
        target = next(c for c in all_cases if c.name == GOAL_CASE)
        profile(target, 2.0 if not args.quick else 0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
