"""The topic plan: every topic the ingress writes, with the settings it should have.

The one source of topic settings. ``ensure_topics`` creates missing topics from it at
start, ``plug-pipeline topics apply`` makes a cluster match it, and ``doctor`` checks a
cluster against it. Pure: it knows the configuration and the broker count, not Kafka.
"""

from __future__ import annotations

import msgspec

from pipeline.config import Config
from pipeline.kafka_client import message_bytes_needed
from pipeline.webhooks import DEADLETTER_SUFFIX, RAW_SUFFIX, EventType, all_topics, topic_name

DAY_MS = 24 * 60 * 60 * 1000
# Room for a record batch's own framing and our headers around the largest record.
FRAMING_BYTES = 64 * 1024
# Three copies survive the loss of one broker while two still acknowledge (acks=all).
MAX_REPLICATION = 3
MIN_INSYNC = 2

# The settings the plan owns; `topics apply` leaves every other topic setting alone.
RETENTION = "retention.ms"
MAX_MESSAGE = "max.message.bytes"
MIN_ISR = "min.insync.replicas"
CLEANUP = "cleanup.policy"
PLANNED_KEYS = (RETENTION, MAX_MESSAGE, MIN_ISR, CLEANUP)


class TopicPlan(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    partitions: int
    replication: int
    configs: dict[str, str]


def max_message_bytes(config: Config) -> int:
    """The topic limit that lets through the largest record the producer may send.

    The producer accepts a record up to ``message_bytes_needed`` (a body at the limit plus
    its normalised envelope); a topic with a smaller ``max.message.bytes`` would refuse
    exactly the records that a 200 has been promised for.
    """
    return message_bytes_needed(config) + FRAMING_BYTES


def erasure_topic(config: Config) -> str:
    return topic_name(config.topic_prefix, EventType.ERASURE_REQUESTED.topic_suffix)


def retention_ms(config: Config, topic: str) -> int:
    """Events are kept ``retention_days``; the raw archive and dead letters, for replay,
    ``raw_retention_days``; erasure requests as long as the raw archive (see ``cleanup``)."""
    archives = {topic_name(config.topic_prefix, s) for s in (RAW_SUFFIX, DEADLETTER_SUFFIX)}
    archives.add(erasure_topic(config))
    days = config.raw_retention_days if topic in archives else config.retention_days
    return days * DAY_MS


def cleanup(config: Config, topic: str) -> str:
    """Erasure requests are compacted and deleted; every other topic is only deleted.

    Compacted, because the topic is keyed ``tenant:subject``: a customer forgotten twice
    leaves one request, and the topic does not grow with repeats. Deleted after the raw
    archive's retention as well, because each request carries the phone it erases: it
    must not outlive the copies it erases. That is the longest any other topic keeps a
    customer's records, so a consumer up to that far behind still reads the request
    before, or along with, the records it applies to.
    """
    return "compact,delete" if topic == erasure_topic(config) else "delete"


def replication_for(brokers: int) -> int:
    return max(1, min(MAX_REPLICATION, brokers))


def plan(config: Config, brokers: int) -> list[TopicPlan]:
    """The plan for a cluster of ``brokers`` brokers."""
    replication = replication_for(brokers)
    min_isr = min(MIN_INSYNC, replication)
    return [
        TopicPlan(
            name=topic,
            partitions=config.topic_partitions,
            replication=replication,
            configs={
                RETENTION: str(retention_ms(config, topic)),
                MAX_MESSAGE: str(max_message_bytes(config)),
                MIN_ISR: str(min_isr),
                CLEANUP: cleanup(config, topic),
            },
        )
        for topic in all_topics(config.topic_prefix)
    ]
