"""``plug-pipeline replay``: re-derive events from ``plug.raw`` or ``plug.deadletter``.

After a decoder fix, the bodies kept verbatim are read back, decoded again and
published to their event topics. The ``event_id`` depends only on tenant, webhook
and body, so a replayed event has the id it had (or would have had) the first
time, and consumers drop what they already hold. Reading stops at the end the
topic had when the replay began; bodies that still fail are counted, not
dead-lettered again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from pipeline import config as configuration
from pipeline import ingest
from pipeline.config import Config
from pipeline.errors import ConfigError, Malformed, NotDurable
from pipeline.kafka_client import admin_settings, consumer_settings
from pipeline.route import deadletter_topic, raw_topic
from pipeline.sink.kafka import KafkaSink
from pipeline.webhooks import Webhook

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "replay", help="re-derive events from the raw archive or the dead letters"
    )
    p.add_argument("--source", choices=["raw", "deadletter"], default="raw")
    p.add_argument("--since", help="first record time: ISO 8601 or epoch ms")
    p.add_argument("--until", help="last record time: ISO 8601 or epoch ms")
    p.add_argument("--from-offset", type=int, help="first offset, in every partition")
    p.add_argument("--to-offset", type=int, help="last offset, in every partition")
    p.add_argument("--tenant", help="only this tenant's webhooks")
    p.add_argument("--webhook", choices=[w.value for w in Webhook], help="only this webhook")
    p.add_argument("--bootstrap-servers", help="Kafka brokers (KAFKA_BOOTSTRAP_SERVERS)")
    p.add_argument("--topic-prefix", help="topic name prefix (PLUG_PIPELINE_TOPIC_PREFIX)")
    p.add_argument("--dry-run", action="store_true", help="decode and count, publish nothing")
    p.set_defaults(func=run)


def epoch_ms(text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError as exc:
        raise ConfigError(f"not a time: {text!r} (use ISO 8601 or epoch ms)") from exc


def run(args: argparse.Namespace) -> int:
    config = configuration.load(
        None, bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix
    )
    counts = asyncio.run(replay(config, args))
    counts["read"] += 0  # the summary always names how many were read
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return EXIT_FAILED if counts["failed_to_publish"] else EXIT_OK


async def replay(config: Config, args: argparse.Namespace) -> Counter[str]:
    topic = (raw_topic if args.source == "raw" else deadletter_topic)(config.topic_prefix)
    since, until = epoch_ms(args.since), epoch_ms(args.until)
    consumer = AIOKafkaConsumer(**consumer_settings(config.kafka, group_id=None))
    sink = KafkaSink(config)
    counts: Counter[str] = Counter()
    try:
        await consumer.start()
        partitions = [TopicPartition(topic, p) for p in await _partitions(config, topic)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await _start_offsets(consumer, partitions, ends, since, args.from_offset)
        if not args.dry_run:
            await sink.start()
            await sink.wait_connected()
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        pending = {tp for tp in partitions if starts[tp] < ends[tp]}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=500)
            for tp, messages in batch.items():
                for msg in messages:
                    last = args.to_offset is not None and msg.offset >= args.to_offset
                    if msg.offset >= ends[tp] or (until is not None and msg.timestamp > until):
                        pending.discard(tp)
                        break
                    await _replay_one(msg.value, dict(msg.headers), config, args, sink, counts)
                    if last or msg.offset + 1 >= ends[tp]:
                        pending.discard(tp)
                        break
    except (KafkaError, NotDurable) as exc:
        print(f"plug-pipeline replay: Kafka: {exc}", file=sys.stderr)
        counts["failed_to_publish"] += 1
    finally:
        await consumer.stop()
        await sink.stop()
    return counts


async def _partitions(config: Config, topic: str) -> list[int]:
    # the consumer's own metadata only knows topics it was told about: ask the cluster
    admin = AIOKafkaAdminClient(**admin_settings(config.kafka, config.ack_timeout_s))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0 or not described["partitions"]:
        raise ConfigError(f"topic {topic} does not exist")
    return sorted(p["partition"] for p in described["partitions"])


async def _start_offsets(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    ends: dict[TopicPartition, int],
    since: int | None,
    from_offset: int | None,
) -> dict[TopicPartition, int]:
    if since is not None:
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, since))
        return {tp: found[tp].offset if found[tp] else ends[tp] for tp in partitions}
    firsts = await consumer.beginning_offsets(partitions)
    if from_offset is not None:
        return {tp: max(from_offset, firsts[tp]) for tp in partitions}
    return dict(firsts)


async def _replay_one(
    body: bytes,
    headers: dict[str, bytes],
    config: Config,
    args: argparse.Namespace,
    sink: KafkaSink,
    counts: Counter[str],
) -> None:
    counts["read"] += 1
    tenant = headers.get("tenant", b"").decode()
    webhook_name = headers.get("webhook", b"").decode()
    if (args.tenant and tenant != args.tenant) or (args.webhook and webhook_name != args.webhook):
        counts["skipped"] += 1
        return
    try:
        webhook = Webhook(webhook_name)
        received_at = int(headers.get("received-at", b"0"))
        record = ingest.ingest(webhook, tenant, body, received_at, config.topic_prefix)
    except (ValueError, Malformed):
        counts["still_malformed"] += 1
        return
    if args.dry_run:
        counts["would_publish"] += 1
        return
    try:
        await sink.publish((record,))
    except NotDurable:
        counts["failed_to_publish"] += 1
        return
    counts["published"] += 1
