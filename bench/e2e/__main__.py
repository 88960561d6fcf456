"""``python -m bench.e2e``: the command line of ``make bench`` (see the package's docstring)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import socket
import sys
from dataclasses import asdict, dataclass
from typing import Any

from bench import wakeup
from bench.common import BENCH, OUT, ROOT, log
from bench.e2e import gopeer, openloop
from bench.e2e.broker import Broker
from bench.e2e.measure import measure_or_skip, warm_broker, write_bodies
from bench.e2e.pyspy import profile_of
from bench.e2e.report import kept_sections, machine, ratios, render, table, verdicts
from bench.e2e.rows import Row, median_rows, round_order
from bench.e2e.settings import BODIES, FULL, QUICK
from bench.e2e.targets import Target, gopeer_target, make_targets
from bench.e2e.wrk import LUA, Load, ensure_wrk


def cpu_latency_arg(value: str) -> int | None:
    """``--cpu-latency``: microseconds to hold, or None for ``off``."""
    if value == "off":
        return None
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"microseconds or off, not {value!r}")
    return int(value)


def rounds_arg(value: str) -> int:
    """``--rounds``: a whole number of rounds, at least one."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a number of rounds, 1 or more, not {value!r}")
    return int(value)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.e2e", description="End-to-end benchmark of the ingress (make bench)."
    )
    p.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    p.add_argument(
        "--bodies",
        default="receive,status,finish40",
        help="comma-separated: receive, status, finish40",
    )
    p.add_argument(
        "--targets",
        default="ingress,ceiling,handwritten,gopeer",
        help="comma-separated: ingress, ceiling, handwritten, gopeer",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also measure `serve --workers N` when the ingress has it",
    )
    p.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    p.add_argument("--duration", type=float, help="override the max and open-loop durations (s)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the ingress under load (receive body) into bench/out/",
    )
    p.add_argument("--keep-kafka", action="store_true", help="stop the broker but keep its data")
    p.add_argument(
        "--cpu-latency",
        type=cpu_latency_arg,
        default=0,
        metavar="US|off",
        help="hold /dev/cpu_dma_latency at US microseconds for the run (default 0: idle CPUs "
        "poll, see bench/wakeup.py); off: the machine's own idle states",
    )
    p.add_argument(
        "--rounds",
        type=rounds_arg,
        metavar="N",
        help="measure every row N times, the targets' order reversed every other round, and "
        "report the medians (default 3; 1 with --quick)",
    )
    p.add_argument("--strict", action="store_true", help="exit 3 when a run had errors")
    return p


def listed(value: str) -> list[str]:
    """A comma-separated option's items."""
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass
class Run:
    """What a run measures (targets in order, bodies) and with what load."""

    args: argparse.Namespace
    names: list[str]
    bodies: list[str]
    targets: dict[str, Target]
    notes: list[str]  # for the report: rows added or skipped, and why
    load: Load


def prepare(p: argparse.ArgumentParser, args: argparse.Namespace) -> Run:
    """The run's load and servers, or an error before anything starts."""
    bodies = listed(args.bodies)
    for b in bodies:
        if b not in BODIES:
            p.error(f"unknown body {b!r}; known: {', '.join(BODIES)}")
    if (os.cpu_count() or 1) < 2:
        log("fewer than 2 CPUs: server and load generator will share a core")
    if shutil.which("taskset") is None:
        raise SystemExit("bench: taskset (util-linux) is needed")
    d = dataclasses.replace(QUICK if args.quick else FULL)
    if args.duration:
        d.max = d.open = args.duration
    OUT.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    lua = OUT / "post.lua"
    lua.write_text(LUA)
    load = Load(wrk, lua, write_bodies(), d, args.connections)
    targets, notes = make_targets(args.workers)
    names = target_names(p, listed(args.targets), targets)
    if "gopeer" in names:
        try:
            targets["gopeer"] = gopeer_target(gopeer.build())
        except gopeer.BuildError as exc:
            raise SystemExit(f"bench: {exc}") from None
    for port in {targets[n].port for n in names if n in targets}:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"bench: 127.0.0.1:{port} is already in use")
    return Run(args, names, bodies, targets, notes, load)


def target_names(
    p: argparse.ArgumentParser, names: list[str], targets: dict[str, Target]
) -> list[str]:
    """``--targets``, checked, with the ``--workers`` row right after the ingress's."""
    for n in names:
        if n not in targets and n not in ("ingress-workers", "gopeer"):
            p.error(f"unknown target {n!r}; known: {', '.join([*targets, 'gopeer'])}")
    if "ingress-workers" in targets and "ingress-workers" not in names:
        names.insert(names.index("ingress") + 1 if "ingress" in names else 0, "ingress-workers")
    return names


def metadata(run: Run, argv: list[str]) -> dict[str, Any]:
    """The run's date, command, mode, durations, machine and the ingress's settings."""
    args = run.args
    command = shlex.join([os.path.relpath(sys.executable, ROOT), "-m", "bench.e2e", *argv])
    if os.environ.get("MAKELEVEL"):
        command = f"make bench  # {command}"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command,
        "mode": "quick" if args.quick else "full",
        "rounds": args.rounds,
        "durations": asdict(run.load.durations),
        "connections": args.connections,
        "machine": machine(),
        "ingress_env": {
            k: v
            for k, v in run.targets["ingress"].env.items()
            if k.startswith("PLUG_PIPELINE_") and "TOKEN" not in k
        },
    }


def measure_all(run: Run, meta: dict[str, Any]) -> tuple[list[Row], dict[str, Any] | None]:
    """Every round of every row, the CPUs held and this run's broker up meanwhile; every
    round's rows and the py-spy summary (None without ``--profile``)."""
    args, targets = run.args, run.targets
    rows: list[Row] = []
    profile_summary = None
    with wakeup.cpu_latency(args.cpu_latency) as idle, Broker(keep=args.keep_kafka) as broker:
        meta["cpu_idle"] = idle.described
        if idle.held:
            meta["round_trip_ms"]["held"] = wakeup.round_trip_ms()
        kafka_targets = [n for n in run.names if n in targets and targets[n].topic_prefix]
        if kafka_targets:
            warm_broker(targets[kafka_targets[0]], run.bodies[0], run.load)
        for round_no in range(1, args.rounds + 1):
            for name in round_order(run.names, round_no):
                if name not in targets:
                    continue  # ingress-workers without `serve --workers`: reported below
                for body in run.bodies:
                    first = round_no == 1 and name == "ingress" and body == run.bodies[0]
                    prof = args.profile and first
                    rows.append(
                        measure_or_skip(targets[name], body, run.load, prof, broker, round_no)
                    )
                    if prof:
                        profile_summary = profile_of(body)
    return rows, profile_summary


def write_report(
    run: Run,
    meta: dict[str, Any],
    rows: list[Row],
    measured: list[Row],
    profile_summary: dict[str, Any] | None,
) -> None:
    """bench/RESULTS.md (other benches' sections kept) and bench/out/e2e.json."""
    report = render(meta, rows, measured, run.notes, profile_summary)
    (BENCH / "RESULTS.md").write_text(report + kept_sections(BENCH / "RESULTS.md"))
    dump = {
        "meta": meta,
        "rows": [asdict(r) for r in rows],
        "rounds": [asdict(r) for r in measured],
        "notes": run.notes,
        "targets": verdicts(rows),
        "profile": profile_summary,
    }
    (OUT / "e2e.json").write_text(json.dumps(dump, indent=2, default=str))


def print_summary(rows: list[Row], notes: list[str]) -> None:
    """The table, the ratios, the targets' verdicts, the flags and the notes on stdout."""
    print()
    print("\n".join(table(rows)))
    print()
    print("\n".join(ratios(rows)))
    print()
    for a, b, c in verdicts(rows):
        print(f"{c:4}  {a}: {b}")
    for r in rows:
        for f in r.flags:
            print(f"FLAG  {r.target}/{r.body}: {f}")
    for n in notes + [f"{r.target}/{r.body}: {n}" for r in rows for n in r.notes]:
        print(f"NOTE  {n}")
    print(f"\nwrote {BENCH / 'RESULTS.md'} and {OUT / 'e2e.json'}")


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM (e.g. from make being stopped) unwinds like Ctrl-C: servers, then the broker."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_openloop"]:
        return openloop.main(argv[1:])
    p = parser()
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    run = prepare(p, args)
    meta = metadata(run, argv)
    signal.signal(signal.SIGTERM, interrupt)
    # The CPUs' wake-up is measured as the machine has it, then with the run's hold.
    meta["round_trip_ms"] = {"idle": wakeup.round_trip_ms()}
    try:
        rows, profile_summary = measure_all(run, meta)
    except KeyboardInterrupt:
        log("interrupted: servers and broker stopped; no report written")
        return 130
    if args.workers > 1 and "ingress-workers" not in run.targets:
        skipped = f"`serve --workers {args.workers}` not available"
        rows.append(Row("ingress-workers", "", "-", 0, skipped=skipped))
    measured, rows = rows, median_rows(rows)
    write_report(run, meta, rows, measured, profile_summary)
    print_summary(rows, run.notes)
    return 3 if args.strict and any(r.flags for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
