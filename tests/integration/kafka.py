"""An independent Kafka client for the tests: librdkafka (confluent-kafka), not aiokafka."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": BOOTSTRAP})


def broker_reachable(timeout_s: float = 5.0) -> bool:
    try:
        admin().list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return True


def create_topics(names: Iterable[str], partitions: int = 3) -> None:
    client = admin()  # kept referenced: the futures fail if the client is collected
    futures = client.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
    )
    for future in futures.values():
        future.result(timeout=30)


class Record:
    """One record as librdkafka read it."""

    def __init__(self, msg: Message) -> None:
        self.topic: str = msg.topic()
        self.partition: int = msg.partition()
        self.offset: int = msg.offset()
        self.key: bytes | None = msg.key()
        self.value: bytes = msg.value()
        self.headers: dict[str, bytes] = dict(msg.headers() or [])

    @property
    def event_id(self) -> str:
        return self.headers["event-id"].decode()


def read_all(topics: Iterable[str], until: int, timeout_s: float = 30.0) -> list[Record]:
    """Every record of ``topics`` from the beginning; returns once ``until`` are read.

    Returns what it has when ``timeout_s`` passes, so a missing record fails the
    test's assertion with the records that were found.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
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
        while len(records) < until and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error() is None:
                    records.append(Record(msg))
        return records
    finally:
        consumer.close()
