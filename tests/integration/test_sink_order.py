"""Publishes from many tasks at once keep each key's order, and deliver every record once.

``KafkaSink`` appends a record straight to the open batch of its partition when there is
one, and leaves the rest (no batch open, a full one) to aiokafka's ``add_message``. Small
batches and many concurrent publishers make both happen often; what a consumer reads back
(librdkafka, not the writer) must be each key's records in the order they were sent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

from pipeline.config import Config
from pipeline.record import Record
from pipeline.sink.kafka import KafkaSink
from tests.support import kafka

KEYS = 64
PER_KEY = 40
# 32 concurrent records a partition, and a batch (192 KiB with 64 KiB bodies) holds 24
VALUE_PAD = b"x" * 8000


def test_concurrent_publishes_keep_key_order_and_deliver_once(broker: str) -> None:
    topic = f"sink-order-{uuid.uuid4().hex[:8]}"
    kafka.create_topics([topic], partitions=2)
    config = Config(bootstrap_servers=broker, create_topics=False, max_body_bytes=64 * 1024)
    waited = 0  # records left to add_message: no open batch, or no room in it

    async def publish_all() -> None:
        nonlocal waited
        sink = KafkaSink(config)
        await sink.start()
        await sink.wait_connected()
        producer = sink._producer
        assert producer is not None
        accumulator = producer._message_accumulator
        add_message = accumulator.add_message

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal waited
            waited += 1
            return await add_message(*args, **kwargs)

        accumulator.add_message = counted

        async def one_key(n: int) -> None:
            key = f"acme:55{n:09d}".encode()
            for seq in range(PER_KEY):
                value = b"%d:%d:" % (n, seq) + VALUE_PAD
                record = Record(topic, key, value, [("event-id", b"%d-%d" % (n, seq))], "")
                assert await sink.publish((record,)) == "published"

        try:
            await asyncio.gather(*(one_key(n) for n in range(KEYS)))
        finally:
            await sink.stop()

    asyncio.run(publish_all())
    total = KEYS * PER_KEY
    # both ways were taken, many times each (the first record of a topic goes through send)
    assert 10 < waited < total - 10, waited
    records = kafka.read_all([topic], until=total)
    assert len(records) == total
    sent_order: dict[int, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        n, seq, _ = record.value.split(b":", 2)
        assert record.key == f"acme:55{int(n):09d}".encode()
        sent_order[int(n)].append(int(seq))
    assert sent_order == {n: list(range(PER_KEY)) for n in range(KEYS)}


def test_known_partitions_are_not_looked_up_per_record(broker: str) -> None:
    """aiokafka's ``send`` copies the topic's partition set (``partitions_for_topic``) twice
    a record; once a topic's partitions are known the sink appends without it."""
    prefix = f"sink-lookups-{uuid.uuid4().hex[:8]}"
    topics = [f"{prefix}.event", f"{prefix}.raw"]
    kafka.create_topics(topics, partitions=3)
    config = Config(bootstrap_servers=broker, create_topics=False)
    webhooks = 200
    lookups = 0

    async def publish_all() -> None:
        nonlocal lookups
        sink = KafkaSink(config)
        await sink.start()
        await sink.wait_connected()
        producer = sink._producer
        assert producer is not None
        cluster = producer.client.cluster
        partitions_for_topic = cluster.partitions_for_topic

        def counted(topic: str) -> Any:
            nonlocal lookups
            lookups += 1
            return partitions_for_topic(topic)

        cluster.partitions_for_topic = counted

        async def webhook(n: int) -> None:
            key = f"acme:55{n % 16:09d}".encode()
            pair = tuple(Record(t, key, b"%d" % n, [("event-id", b"%d" % n)], "") for t in topics)
            assert await sink.publish(pair) == "published"

        try:
            # The first records wait for the topics' metadata, through send; then it is known.
            for n in range(2):
                await webhook(n)
            assert lookups > 0
            lookups = 0
            await asyncio.gather(*(webhook(n) for n in range(2, webhooks)))
        finally:
            await sink.stop()

    asyncio.run(publish_all())
    # None, or a few after a metadata refresh (it forgets the partitions); send's way
    # would be four a webhook.
    assert lookups <= 8, lookups
    records = kafka.read_all(topics, until=2 * webhooks)
    assert len(records) == 2 * webhooks
