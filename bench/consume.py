"""Consumer throughput: pipeline.consume against plain aiokafka, on the local broker.

    make kafka-up && .venv/bin/python bench/consume.py [--events N] [--quick]

Writes N envelopes (the corpus's records, each copy with its own event_id) to fresh
topics under a prefix of their own, then reads them back to the end offsets four ways:
decode_event alone on the bytes in memory (the CPU ceiling of decoding), aiokafka
getmany with no decoding (the fetch ceiling), the Consumer, and the Consumer with a
dedup window. Prints events/s for each; never fails on a number.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.config import Config
from pipeline.consume import Consumer, decode_event, event_type_of_topic
from pipeline.ingest import ingest
from pipeline.kafka_client import admin_settings, consumer_settings, producer_settings
from pipeline.record import Record
from pipeline.route import event_topic
from pipeline.webhooks import EventType, Webhook

CORPUS = Path(__file__).parents[1] / "tests" / "fixtures" / "plug"


def corpus_records(prefix: str) -> list[Record]:
    paths = sorted(p for p in CORPUS.glob("*/*.json") if p.parent.name != "seed")
    return [ingest(Webhook(p.parent.name), "acme", p.read_bytes(), 1, prefix) for p in paths]


def copies(records: list[Record], count: int) -> list[tuple[str, bytes, bytes]]:
    """``count`` (topic, key, value) triples; each copy's event_id is made unique."""
    out = []
    for n in range(count):
        r = records[n % len(records)]
        new_id = f"{n:032x}".encode()
        out.append((r.topic, r.key, r.value.replace(r.event_id.encode(), new_id, 1)))
    return out


async def write(config: Config, triples: list[tuple[str, bytes, bytes]]) -> None:
    admin = AIOKafkaAdminClient(**admin_settings(config.kafka, config.ack_timeout_s))
    await admin.start()
    try:
        topics = [event_topic(config.topic_prefix, e) for e in EventType]
        await admin.create_topics([NewTopic(t, 6, 1) for t in topics])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # created is not yet known to every broker
            described = await admin.describe_topics(topics)
            if all(d["error_code"] == 0 and len(d["partitions"]) == 6 for d in described):
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**producer_settings(config) | {"linger_ms": 5})
    await producer.start()
    try:
        for start in range(0, len(triples), 5000):
            batch = triples[start : start + 5000]
            futures = [await producer.send(t, v, key=k) for t, k, v in batch]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


def decode_only(config: Config, triples: list[tuple[str, bytes, bytes]]) -> float:
    started = time.perf_counter()
    for topic, _key, value in triples:
        event_type = event_type_of_topic(config.topic_prefix, topic)
        assert event_type is not None
        decode_event(event_type, value)
    return time.perf_counter() - started


async def plain_aiokafka(config: Config, count: int) -> float:
    consumer = AIOKafkaConsumer(
        **consumer_settings(config.kafka, None, auto_offset_reset="earliest")
    )
    await consumer.start()
    try:
        topics = [event_topic(config.topic_prefix, e) for e in EventType]
        partitions = [TopicPartition(t, p) for t in topics for p in range(6)]
        consumer.assign(partitions)
        started, seen = time.perf_counter(), 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            seen += sum(len(records) for records in batch.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def library(config: Config, count: int, dedup: int | None) -> float:
    started, seen = time.perf_counter(), 0
    async with Consumer(config.kafka, until_caught_up=True, dedup=dedup) as consumer:
        async for _item in consumer:
            seen += 1
    elapsed = time.perf_counter() - started
    assert seen == count, (seen, count)
    return elapsed


async def main(count: int) -> None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    config = Config(bootstrap_servers=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:6]}")
    triples = copies(corpus_records(config.topic_prefix), count)
    size = sum(len(v) for _t, _k, v in triples)
    print(f"{count} events, {size / count:.0f} bytes each on average, broker {bootstrap}")
    await write(config, triples)
    rows = [
        ("decode_event only (in memory)", decode_only(config, triples)),
        ("aiokafka getmany, no decoding", await plain_aiokafka(config, count)),
        ("Consumer", await library(config, count, None)),
        ("Consumer, dedup window 100000", await library(config, count, 100_000)),
    ]
    for name, seconds in rows:
        print(f"{name:<32} {count / seconds:>10,.0f} events/s  {size / seconds / 1e6:>7.1f} MB/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10000 events")
    args = parser.parse_args()
    asyncio.run(main(10_000 if args.quick else args.events))
