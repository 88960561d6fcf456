"""The Kafka sink's own CPU per webhook, against a real broker (``make bench-sink``).

What a webhook costs between "the records are built" and "Kafka acknowledged them",
without HTTP: ``KafkaSink.publish`` of a webhook's two records (its event and its raw copy,
as the ingress builds them; a receive-message, or with ``--body finish40`` a 40-message
finishAttendance as ``make bench``'s) from 64 tasks at once, as fast as the broker
takes them, with the ingress's producer settings (``acks=all``, idempotent, lz4). The
webhooks are of 512 conversations, so their keys spread over the topics' partitions as a
centre's do; ``--conversations 1`` puts each topic's records on one partition, as ``make
bench``'s single body does (the largest batches, the least CPU a record). glibc's
allocator is tuned as ``serve`` tunes it (``pipeline/runtime/allocator.py``). Each tree
runs in a process of its own on CPU 0 (``taskset``, PYTHONPATH set to the tree) that
reports its own CPU time (``time.process_time()``: every thread, aiokafka's I/O included)
per webhook over a window, after a warm-up. With ``--compare REV`` that revision is
measured too, in alternation, round after round, so a slow spell of the machine hits
both; the ratio is this tree's figure over the revision's.

    make kafka-up && make bench-sink BENCH_ARGS="--compare main --rounds 6"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = 64
PREFIX = "bench-sink."
BODIES = {"receive": "receive-message", "finish40": "finish-attendance"}


async def _publish(
    bootstrap: str, webhooks: int, warmup: int, conversations: int, body_name: str
) -> dict[str, float]:
    # The tree under test: PYTHONPATH puts it first.
    from pipeline import config as settings
    from pipeline import ingest
    from pipeline.runtime import allocator
    from pipeline.simulate.generator import Generator
    from pipeline.sink.kafka import KafkaSink
    from pipeline.webhooks import Webhook

    hook = Webhook(BODIES[body_name])
    # glibc's allocator as ``serve`` sets it: a batch's buffers of 100 KB and more then come
    # from the heap, not from a mapping made and unmapped (and faulted in) for each batch
    allocator.keep_freed_memory()

    config = settings.load(
        {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PLUG_PIPELINE_TOPIC_PREFIX": PREFIX}
    )
    gen = Generator(seed=1)
    received_at = int(time.time() * 1000)
    pairs = []
    # one webhook of each conversation (one key each), sent round and round
    for _ in range(conversations):
        if hook is Webhook.RECEIVE_MESSAGE:
            body = gen.receive_message_body(size_hint=1024)
        else:
            body = gen.finish_attendance_body(40)
        event = ingest.ingest(hook, "acme", body, received_at, PREFIX)
        pairs.append((event, ingest.raw(hook, "acme", body, received_at, PREFIX, event)))
    sink = KafkaSink(config)
    await sink.start()
    await sink.wait_connected()
    sent = 0

    async def publisher(count: int) -> None:
        nonlocal sent
        while sent < count:
            pair = pairs[sent % len(pairs)]
            sent += 1
            if await sink.publish(pair) != "published":
                raise RuntimeError("a webhook was not published")

    try:
        await asyncio.gather(*(publisher(warmup) for _ in range(TASKS)))
        sent = 0
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(publisher(webhooks) for _ in range(TASKS)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await sink.stop()
    return {"cpu_us": cpu / sent * 1e6, "per_s": sent / wall, "cpu_share": cpu / wall}


def _run(source: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [
        "taskset", "-c", "0", sys.executable, str(Path(__file__).resolve()), "--child",
        "--bootstrap", args.bootstrap, "--webhooks", str(args.webhooks),
        "--warmup", str(args.warmup), "--conversations", str(args.conversations),
        "--body", args.body,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{source}{os.pathsep}{ROOT}"}
    done = subprocess.run(command, env=env, cwd=source, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench-sink: the run of {source} failed:\n{done.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--compare", metavar="REV", help="also measure this git revision")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--webhooks", type=int, default=100_000, help="per run, measured")
    parser.add_argument("--warmup", type=int, default=20_000, help="per run, before measuring")
    parser.add_argument("--conversations", type=int, default=512,
                        help="distinct keys (1: every record of a topic on one partition, "
                             "as in make bench)")  # fmt: skip
    parser.add_argument("--body", choices=sorted(BODIES), default="receive",
                        help="the webhook published: receive-message (1 KB) or a "
                             "40-message finishAttendance (22 KB)")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.bootstrap:
        parser.error("no broker: --bootstrap or KAFKA_BOOTSTRAP_SERVERS (make kafka-up)")
    if args.child:
        figures = asyncio.run(
            _publish(args.bootstrap, args.webhooks, args.warmup, args.conversations, args.body)
        )
        print(json.dumps(figures))
        return 0

    # Here, not at the top: a run's process imports this file with another tree first.
    from bench.trees import worktree

    results: dict[str, list[dict[str, float]]] = {}
    with contextlib.ExitStack() as stack:
        trees = {"this tree": ROOT}
        if args.compare:
            trees[args.compare] = stack.enter_context(worktree(args.compare, "bench-sink-"))
        for n in range(1, args.rounds + 1):
            for name, source in trees.items():
                figures = _run(source, args)
                results.setdefault(name, []).append(figures)
                print(
                    f"round {n} {name:>12}: {figures['cpu_us']:5.1f} CPU us/webhook, "
                    f"{figures['per_s']:,.0f} webhooks/s, CPU {figures['cpu_share']:.0%}",
                    flush=True,
                )
    print(
        f"\nKafkaSink.publish, CPU us per {args.body} webhook (two records), median of"
        f" {args.rounds} rounds ({args.webhooks:,} webhooks a run, {TASKS} tasks,"
        f" {args.conversations} conversations, broker {args.bootstrap}):\n"
    )
    print("| tree | CPU us/webhook | min | max | webhooks/s (median) |")
    print("|---|---:|---:|---:|---:|")
    medians = {}
    for name, runs in results.items():
        cpu = [r["cpu_us"] for r in runs]
        medians[name] = statistics.median(cpu)
        rate = statistics.median(r["per_s"] for r in runs)
        print(f"| {name} | {medians[name]:.1f} | {min(cpu):.1f} | {max(cpu):.1f} | {rate:,.0f} |")
    if args.compare:
        ratio = medians[args.compare] / medians["this tree"]
        print(f"\nwebhooks per CPU-second, this tree / {args.compare}: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
