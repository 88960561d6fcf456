"""Our partition for a key is librdkafka's: a conversation keeps its partition whoever writes."""

from __future__ import annotations

import asyncio
import uuid

from confluent_kafka import Producer

from pipeline.config import Config
from pipeline.record import Record
from pipeline.sink.kafka import KafkaSink
from pipeline.sink.partitioner import partition_for
from tests.support import kafka

PARTITIONS = 7
KEYS = [f"acme:5511{n:09d}".encode() for n in range(400)] + [f"t{n}:".encode() for n in range(100)]


def test_keys_land_where_librdkafka_puts_them(broker: str) -> None:
    ours, theirs = f"part-ours-{uuid.uuid4().hex[:8]}", f"part-rd-{uuid.uuid4().hex[:8]}"
    kafka.create_topics([ours, theirs], partitions=PARTITIONS)

    producer = Producer({"bootstrap.servers": broker, "partitioner": "murmur2_random"})
    for key in KEYS:
        producer.produce(theirs, value=key, key=key)
    assert producer.flush(30) == 0

    async def publish() -> None:
        sink = KafkaSink(Config(bootstrap_servers=broker, create_topics=False))
        await sink.start()
        await sink.wait_connected()
        try:
            for n in range(0, len(KEYS), 50):
                chunk = KEYS[n : n + 50]
                await sink.publish([Record(ours, k, k, [], k.decode()) for k in chunk])
        finally:
            await sink.stop()

    asyncio.run(publish())
    placed_rd = {r.key: r.partition for r in kafka.read_all([theirs], until=len(KEYS))}
    placed_ours = {r.key: r.partition for r in kafka.read_all([ours], until=len(KEYS))}
    assert len(placed_rd) == len(placed_ours) == len(KEYS)
    assert placed_ours == placed_rd
    assert all(placed_rd[k] == partition_for(k, PARTITIONS) for k in KEYS)
    assert len(set(placed_rd.values())) == PARTITIONS  # the keys really spread
