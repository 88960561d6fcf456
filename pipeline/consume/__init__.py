"""Reading our topics: typed events, consumer groups, at-least-once.

::

    from pipeline.consume import Consumer, KafkaSettings

    kafka = KafkaSettings.from_env()  # KAFKA_* and PLUG_PIPELINE_TOPIC_PREFIX
    async with Consumer(kafka, group_id="kpi", dedup=10_000) as consumer:
        async for item in consumer:
            print(item.event_type, item.event.data)

See ``consumer.py`` for when offsets are committed and what happens to a record
that does not decode.
"""

from pipeline.config import KafkaSecurity, KafkaSettings
from pipeline.consume.consumed import (
    ConsumedEvent,
    ConsumerStats,
    OnUndecodable,
    Partition,
    RawRecord,
    StartPositions,
)
from pipeline.consume.consumer import Consumer
from pipeline.consume.decode import (
    KNOWN_SCHEMA_VERSIONS,
    AnyEvent,
    data_type,
    decode_event,
    event_type_of_header,
    event_type_of_topic,
)
from pipeline.consume.dedup import DedupWindow
from pipeline.errors import ConsumeFailed, UndecodableRecord

__all__ = [
    "KNOWN_SCHEMA_VERSIONS",
    "AnyEvent",
    "ConsumeFailed",
    "ConsumedEvent",
    "Consumer",
    "ConsumerStats",
    "DedupWindow",
    "KafkaSecurity",
    "KafkaSettings",
    "OnUndecodable",
    "Partition",
    "RawRecord",
    "StartPositions",
    "UndecodableRecord",
    "data_type",
    "decode_event",
    "event_type_of_header",
    "event_type_of_topic",
]
