"""Create the ingress's topics when they are missing, so a broker without auto-create works."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from pipeline.config import Config
from pipeline.kafka_client import admin_settings
from pipeline.webhooks import all_topics

log = logging.getLogger(__name__)


async def ensure_topics(config: Config) -> list[str]:
    """Create what is missing: ``topic_partitions`` each, replicated on up to 3 brokers.

    Best effort: a user without the right to create topics gets a warning, and the
    ingress goes on with the topics their operators made.
    """
    admin = AIOKafkaAdminClient(**admin_settings(config))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in all_topics(config.topic_prefix) if t not in existing]
        if missing:
            brokers = len((await admin.describe_cluster())["brokers"])
            replication = min(3, brokers)
            new = [NewTopic(t, config.topic_partitions, replication) for t in missing]
            await admin.create_topics(new)
            log.info(
                "created %s (%d partitions, replication %d)",
                ", ".join(missing),
                config.topic_partitions,
                replication,
            )
        return missing
    except KafkaError as exc:
        log.warning("could not check or create topics: %s", exc)
        return []
    finally:
        await admin.close()
