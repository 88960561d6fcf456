"""``plug-pipeline topics apply`` on the real broker, read back with librdkafka's admin."""

from __future__ import annotations

import subprocess
import time
import uuid

from confluent_kafka.admin import ConfigResource, NewTopic  # type: ignore[attr-defined]

from pipeline.config import Config
from pipeline.ops.plan import DAY_MS, max_message_bytes
from pipeline.webhooks import all_topics
from tests.support import cli, kafka


def topics(*args: str) -> subprocess.CompletedProcess[str]:
    return cli.run("topics", *args, env={"KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP})


def settings(topic: str) -> dict[str, str]:
    """The topic's effective settings, as the broker reports them to another client."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    client = kafka.admin()
    entries = client.describe_configs([resource])[resource].result(timeout=30)
    return {name: entry.value for name, entry in entries.items()}


def settled(topic: str, name: str, wanted: str, timeout_s: float = 30.0) -> str:
    """The setting once it reads ``wanted``, or its last value at the deadline.

    A broker applies a committed config change a moment after it answered the change.
    """
    deadline = time.monotonic() + timeout_s
    value = settings(topic)[name]
    while value != wanted and time.monotonic() < deadline:
        time.sleep(0.1)  # polling the broker for the condition itself, bounded by the deadline
        value = settings(topic)[name]
    return value


def partitions(topic: str) -> int:
    return len(kafka.admin().list_topics(topic, timeout=30).topics[topic].partitions)


def test_apply_creates_missing_topics_alters_retention_and_is_idempotent(broker: str) -> None:
    prefix = f"ops{uuid.uuid4().hex[:8]}"
    names = all_topics(prefix)
    received, raw = f"{prefix}.message.received", f"{prefix}.raw"
    # One topic made by hand with a wrong retention; the others are missing.
    client = kafka.admin()
    created = client.create_topics(
        [
            NewTopic(
                received, num_partitions=6, replication_factor=1, config={"retention.ms": "1000"}
            )
        ]
    )
    created[received].result(timeout=30)

    first = topics("apply", "--topic-prefix", prefix)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"config {received}: retention.ms 1000 -> {7 * DAY_MS}" in first.stdout
    assert sum(line.startswith("create ") for line in first.stdout.splitlines()) == len(names) - 1

    listed = kafka.admin().list_topics(timeout=30).topics
    assert all(name in listed for name in names)
    assert settled(received, "retention.ms", str(7 * DAY_MS)) == str(7 * DAY_MS)
    assert settings(raw)["retention.ms"] == str(30 * DAY_MS)  # the archive keeps longer
    limit = str(max_message_bytes(Config()))
    assert all(settings(name)["max.message.bytes"] == limit for name in names)
    assert all(partitions(name) == 6 for name in names)

    second = topics("apply", "--topic-prefix", prefix)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.strip() == "no changes: every topic matches the plan"


def test_apply_refuses_to_lower_partitions_and_changes_nothing(broker: str) -> None:
    prefix = f"ops{uuid.uuid4().hex[:8]}"
    wide = f"{prefix}.message.status"
    client = kafka.admin()
    created = client.create_topics(
        [NewTopic(wide, num_partitions=8, replication_factor=1, config={"retention.ms": "1000"})]
    )
    created[wide].result(timeout=30)

    result = topics("apply", "--topic-prefix", prefix, "--topic-partitions", "6")
    assert result.returncode == 1
    assert f"refuse {wide}: has 8 partitions, the plan says 6" in result.stdout
    assert "nothing changed" in result.stdout
    listed = kafka.admin().list_topics(timeout=30).topics
    assert [name for name in all_topics(prefix) if name in listed] == [wide]  # none created
    assert partitions(wide) == 8
    assert settings(wide)["retention.ms"] == "1000"  # not altered either


def test_describe_names_what_differs_from_the_plan(broker: str) -> None:
    prefix = f"ops{uuid.uuid4().hex[:8]}"
    short = f"{prefix}.deadletter"
    client = kafka.admin()
    client.create_topics(
        [NewTopic(short, num_partitions=6, replication_factor=1, config={"retention.ms": "5000"})]
    )[short].result(timeout=30)

    result = topics("describe", "--topic-prefix", prefix)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert f"retention.ms=5000 (plan: {30 * DAY_MS})" in lines[short]
    assert lines[f"{prefix}.raw"].startswith("missing")
    assert f"{prefix}.raw" not in kafka.admin().list_topics(timeout=30).topics  # describe made none
