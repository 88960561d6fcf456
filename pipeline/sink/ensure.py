"""The ingress's topics: create what is missing, and check each takes a body at the limit."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from pipeline.config import Config
from pipeline.kafka_client import admin_settings, message_bytes_needed
from pipeline.ops.plan import plan
from pipeline.webhooks import all_topics

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = "max.message.bytes"


async def ensure_topics(config: Config) -> list[str]:
    """Create what is missing, as the topic plan (``pipeline.ops.plan``) declares it:
    partitions, replication, retention and a ``max.message.bytes`` that takes a body at
    the limit.

    Best effort: a user without the right to create topics gets a warning, and the
    ingress goes on with the topics their operators made.
    """
    admin = AIOKafkaAdminClient(**admin_settings(config.kafka, config.ack_timeout_s))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        brokers = len((await admin.describe_cluster())["brokers"])
        missing = [t for t in plan(config, brokers) if t.name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(t.name, t.partitions, t.replication, topic_configs=t.configs) for t in missing
        ]
        response = await admin.create_topics(new)
        created = []
        for topic, code, message in response.topic_errors:
            error = for_code(code)
            if code == 0 or error is TopicAlreadyExistsError:  # another replica won the race
                created.append(topic)
            else:
                log.warning("could not create %s: %s %s", topic, error.__name__, message or "")
        if created:
            log.info(
                "created %s (%d partitions, replication %d)",
                ", ".join(created),
                missing[0].partitions,
                missing[0].replication,
            )
        return created
    except KafkaError as exc:
        log.warning("could not check or create topics: %s", exc)
        return []
    finally:
        await admin.close()


async def message_limits(config: Config) -> dict[str, int]:
    """Each existing topic's ``max.message.bytes``."""
    admin = AIOKafkaAdminClient(**admin_settings(config.kafka, config.ack_timeout_s))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [t for t in all_topics(config.topic_prefix) if t in existing]
        if not wanted:
            return {}
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, t, {MAX_MESSAGE_BYTES: None}) for t in wanted
        ]
        limits: dict[str, int] = {}
        for response in await admin.describe_configs(resources):
            for error_code, _msg, _type, name, entries in response.resources:
                if error_code:
                    continue
                for entry in entries:
                    if entry[0] == MAX_MESSAGE_BYTES and entry[1] is not None:
                        limits[name] = int(entry[1])
        return limits
    finally:
        await admin.close()


async def check_message_limits(config: Config) -> dict[str, int]:
    """Warn about every topic too small for a body at the limit; return those topics.

    Kafka checks the compressed batch, so a body over the topic's limit may still go
    through; one that does not is answered 413 ``too_large_for_kafka`` and kept aside.
    """
    try:
        limits = await message_limits(config)
    except KafkaError as exc:
        log.warning("could not read the topics' max.message.bytes: %s", exc)
        return {}
    needed = message_bytes_needed(config)
    small = {t: n for t, n in limits.items() if n < needed}
    for topic, limit in sorted(small.items()):
        log.warning(
            "topic %s takes records up to %d bytes; a %d-byte body (PLUG_PIPELINE_MAX_BODY_BYTES)"
            " with its envelope needs up to %d: larger ones are answered 413 too_large_for_kafka."
            " Raise its max.message.bytes, or lower the body limit",
            topic,
            limit,
            config.max_body_bytes,
            needed,
        )
    return small
