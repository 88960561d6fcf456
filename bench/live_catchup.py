"""``make bench-live``: how long the wallboard takes to rebuild a busy centre's day.

A simulated day of one tenant (``--events`` webhooks' events, spread from the local
midnight to now in ``America/Sao_Paulo``) is produced with librdkafka, lz4 as the ingress
writes them, onto topics of the run's own on the local Kafka (``--bootstrap``). Then
``plug-pipeline live`` starts and is timed until ``/healthz`` says it caught up (every
partition read from the first record of the window to its end offset); the figures it
shows are printed, with its peak RSS. The topics are deleted afterwards. Prints Markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from zoneinfo import ZoneInfo

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bench.common import log
from bench.e2e.procfs import vm_hwm_kb
from pipeline import ingest
from pipeline.errors import Malformed
from pipeline.simulate.generator import Generator
from pipeline.webhooks import all_topics

ZONE = "America/Sao_Paulo"
TENANT = "busy"
VIEWER = "bench-viewer-token"
PORT = 19490


def produce(bootstrap: str, prefix: str, n: int) -> int:
    """The day's events; the number of attendances finished in it."""
    zone = ZoneInfo(ZONE)
    now_ms = int(time.time() * 1000)
    midnight = dt.datetime.combine(dt.datetime.now(zone).date(), dt.time(), zone)
    start_ms = int(midnight.timestamp() * 1000) + 60_000
    step = max(1.0, (now_ms - 60_000 - start_ms) / n)
    generator = Generator(
        9, start_ms=start_ms, mean_step_ms=step, instances=8, customers=20_000, parallel=40,
        operators=60,
    )  # fmt: skip
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True,
         "compression.type": "lz4"}
    )  # fmt: skip
    finished = 0
    for i in range(n):
        webhook, body = next(generator)
        received_at = int(start_ms + i * step)
        try:
            record = ingest.ingest(webhook, TENANT, body, received_at, prefix)
        except Malformed as exc:
            record = ingest.deadletter(webhook, TENANT, body, received_at, prefix, exc)
        finished += record.topic.endswith(".attendance.finished")
        while True:
            try:
                headers: list[tuple[str, str | bytes | None]] = list(record.headers)
                producer.produce(record.topic, record.value, record.key, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0, "records left undelivered"
    return finished


def catch_up(bootstrap: str, prefix: str) -> dict[str, float]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PLUG_PIPELINE_TOPIC_PREFIX": prefix,
        "PLUG_PIPELINE_VIEWER_TOKENS": f"{TENANT}={VIEWER}",
        "PLUG_PIPELINE_KPI_TIME_ZONE": ZONE,
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "live", "--port", str(PORT)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{PORT}"
    peak_kb = 0
    try:
        while True:
            peak_kb = max(peak_kb, vm_hwm_kb(process.pid))
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
                    health = json.loads(resp.read())
                if health["caught_up"]:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                raise RuntimeError("plug-pipeline live exited")
            time.sleep(0.1)  # polling: the loop ends on the condition itself
        wall = time.monotonic() - started
        with urllib.request.urlopen(f"{url}/api/now?token={VIEWER}", timeout=5) as resp:
            now = json.loads(resp.read())
        peak_kb = max(peak_kb, vm_hwm_kb(process.pid))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "wall_s": wall,
        "feed_s": float(health["catch_up_s"]),
        "rss_mb": peak_kb / 1024,
        "finished_today": float(now["total"]["finished_today"]),
        "open_now": float(now["total"]["open_attendances"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    args = parser.parse_args(argv)
    prefix = f"bv{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    topics = all_topics(prefix)
    for future in admin.create_topics([NewTopic(t, args.partitions, 1) for t in topics]).values():
        future.result(timeout=30)
    try:
        log(f"producing {args.events:,} events of one day on {prefix}.*")
        finished = produce(args.bootstrap, prefix, args.events)
        log("starting plug-pipeline live")
        result = catch_up(args.bootstrap, prefix)
    finally:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result(timeout=60)
    print("| events | attendances finished | caught up (feed) | process start to caught up | "
          "events/s | peak RSS |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.events:,} | {finished:,} | {result['feed_s']:.1f} s | {result['wall_s']:.1f} s "
        f"| {args.events / result['feed_s']:,.0f} | {result['rss_mb']:.0f} MB |"
    )
    print(f"\nshown: {result['finished_today']:.0f} finished today, {result['open_now']:.0f} open")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
