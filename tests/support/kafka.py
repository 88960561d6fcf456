"""An independent Kafka client for the tests: librdkafka (confluent-kafka), not aiokafka."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def admin(bootstrap: str = BOOTSTRAP) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def broker_reachable(timeout_s: float = 5.0) -> bool:
    try:
        admin().list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return True


def create_topics(
    names: Iterable[str],
    partitions: int = 3,
    replication: int = 1,
    bootstrap: str = BOOTSTRAP,
    config: dict[str, str] | None = None,
) -> None:
    client = admin(bootstrap)  # kept referenced: the futures fail if the client is collected
    futures = client.create_topics(
        [
            NewTopic(
                n, num_partitions=partitions, replication_factor=replication, config=config or {}
            )
            for n in names
        ]
    )
    for future in futures.values():
        future.result(timeout=30)


class Record:
    """One record as librdkafka read it."""

    def __init__(self, msg: Message) -> None:
        topic, partition, offset, value = msg.topic(), msg.partition(), msg.offset(), msg.value()
        assert topic is not None
        assert partition is not None
        assert offset is not None
        self.topic: str = topic
        self.partition: int = partition
        self.offset: int = offset
        key = msg.key()
        self.key: bytes | None = key.encode() if isinstance(key, str) else key
        self.value: bytes = value.encode() if isinstance(value, str) else (value or b"")
        found = msg.headers() or []
        pairs = found.items() if isinstance(found, dict) else found
        self.headers: dict[str, bytes] = {
            k: v.encode() if isinstance(v, str) else (v or b"") for k, v in pairs
        }

    @property
    def event_id(self) -> str:
        return self.headers["event-id"].decode()


def read_all(
    topics: Iterable[str],
    until: int | None = None,
    timeout_s: float = 30.0,
    want: Iterable[str] = (),
    bootstrap: str = BOOTSTRAP,
) -> list[Record]:
    """Every record of ``topics`` from the beginning.

    Returns once ``until`` records are read, or once every event id in ``want`` has
    been seen, or when ``timeout_s`` passes, whichever is first; then a missing
    record fails the test's own assertion, with the records that were found.
    """
    missing = set(want)
    # with ids to wait for, they decide; with neither, one record is enough
    limit = until if until is not None else (0 if missing else 1)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "plug-pipeline-tests",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        assignment = [
            TopicPartition(t, p, 0)  # offset 0: from the beginning
            for t in topics
            if t in metadata.topics
            for p in metadata.topics[t].partitions
        ]
        consumer.assign(assignment)
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                if msg.error() is None:
                    record = Record(msg)
                    records.append(record)
                    missing.discard(record.headers.get("event-id", b"").decode())
            if len(records) >= limit and not missing:
                break
        return records
    finally:
        consumer.close()


def committed(group: str, topics: Iterable[str], bootstrap: str = BOOTSTRAP) -> dict[str, int]:
    """The offsets ``group`` committed, as ``"topic[partition]" -> offset`` (absent: none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(t, p)
            for t in topics
            if t in metadata.topics
            for p in metadata.topics[t].partitions
        ]
        found = consumer.committed(partitions, timeout=10)
        return {f"{tp.topic}[{tp.partition}]": tp.offset for tp in found if tp.offset >= 0}
    finally:
        consumer.close()


def produce(
    topic: str,
    value: bytes,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    bootstrap: str = BOOTSTRAP,
) -> tuple[int, int]:
    """Write one record, acks=all; returns its (partition, offset)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    delivered: list[Message] = []
    sent: list[tuple[str, str | bytes | None]] = list(headers or [])
    producer.produce(topic, value, key, headers=sent, on_delivery=lambda _e, m: delivered.append(m))
    producer.flush(30)
    [msg] = delivered
    if msg.error() is not None:
        raise KafkaException(msg.error())
    partition, offset = msg.partition(), msg.offset()
    assert partition is not None
    assert offset is not None
    return partition, offset
