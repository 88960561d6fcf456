"""Which compression pays for itself: CPU per webhook against bytes saved, per codec and level.

``make bench-compression`` runs this. Realistic records (the simulate generator's traffic
through ``pipeline.ingest``: each webhook is its event envelope and its raw copy) are built
into record batches by aiokafka's own batch builder, as the producer does, once per codec
and level; the CPU time per webhook (process time, steadier than wall time on a busy
machine) and the batch bytes are printed beside the uncompressed batch. A benchmark, not a
test: it prints figures and never fails on a number.

    .venv/bin/python bench/compression.py [--webhooks N] [--batch N] [--repeat N]

What to read from it: on a loopback or a LAN the broker round trip, not the bytes, bounds
an ingress that waits for each ack, so the codec's CPU per webhook is what costs
throughput; the bytes matter for the broker's disk and a WAN.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from pipeline.ingest import ingest, raw
from pipeline.record import Record
from pipeline.simulate.generator import Generator
from pipeline.sink.codecs import CODECS, set_levels

CASES: list[tuple[str, int | None]] = [
    ("none", None),
    ("lz4", 9),
    ("lz4", 1),
    ("snappy", None),
    ("zstd", 3),
    ("zstd", 1),
    ("gzip", 1),
]


def records(webhooks: int) -> list[Record]:
    out: list[Record] = []
    for n, (webhook, body) in enumerate(Generator(seed=3).take(webhooks)):
        event = ingest(webhook, "bench", body, 1_735_736_400_000 + n, "plug")
        out += [event, raw(webhook, "bench", body, 1_735_736_400_000 + n, "plug", event)]
    return out


def build(batch: list[Record], codec: int) -> int:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=0,
        producer_id=1,
        producer_epoch=0,
        base_sequence=0,
        batch_size=16 * 1024 * 1024,
    )
    for offset, r in enumerate(batch):
        builder.append(offset, timestamp=None, key=r.key, value=r.value, headers=r.headers)
    return len(builder.build())


def measure(recs: list[Record], per_batch: int, codec: str, level: int | None) -> tuple[float, int]:
    """(CPU us per webhook, bytes) for building every batch with ``codec`` at ``level``."""
    set_levels({codec: level} if level is not None else {})
    # A batch holds records of one partition: events and raw copies never share one.
    by_topic: dict[str, list[Record]] = {}
    for r in recs:
        by_topic.setdefault(r.topic, []).append(r)
    batches = [
        rs[i : i + per_batch] for rs in by_topic.values() for i in range(0, len(rs), per_batch)
    ]
    started = time.process_time()
    size = sum(build(b, CODECS[codec]) for b in batches)
    cpu = time.process_time() - started
    return cpu / (len(recs) / 2) * 1e6, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1, help="records per batch (of one topic)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    recs = records(args.webhooks)
    raw_bytes = sum(len(r.value) for r in recs)
    print(
        f"{args.webhooks} webhooks, {raw_bytes / args.webhooks:.0f} B a webhook (event + raw),"
        f" {args.batch} records a batch, best of {args.repeat}"
    )
    base_us, base_size = 0.0, 0
    print(f"{'codec':<10}{'level':>6}{'us/webhook':>12}{'extra us':>10}{'bytes':>12}{'ratio':>8}")
    for codec, level in CASES:
        runs = [measure(recs, args.batch, codec, level) for _ in range(args.repeat)]
        us = min(u for u, _ in runs)
        size = runs[0][1]
        if codec == "none":
            base_us, base_size = us, size
        print(
            f"{codec:<10}{level if level is not None else '-':>6}{us:>12.1f}"
            f"{us - base_us:>10.1f}{size:>12}{size / base_size:>8.2f}"
        )
    set_levels({})
    print(f"spread: median/min of the last case {statistics.median(u for u, _ in runs) / us:.2f}")


if __name__ == "__main__":
    main()
