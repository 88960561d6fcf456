"""pipeline.consume on the real broker: typed, at-least-once, nothing undecodable skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import KafkaSettings
from pipeline.consume import ConsumedEvent, Consumer, RawRecord, UndecodableRecord, data_type
from pipeline.ingest import ingest
from pipeline.record import Record
from pipeline.route import event_topic
from pipeline.webhooks import WEBHOOK_EVENT_TYPES, EventType, Webhook, all_topics
from tests.support import kafka
from tests.support.ingress import Ingress, start_ingress, stop_ingress
from tests.support.payloads import fixture_bytes
from tests.support.simulate import TOPICS, simulate


@pytest.fixture(scope="module")
def acked(ingress: Ingress, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    got = simulate(ingress, tmp_path_factory.mktemp("sim"), count=700, seed=23)
    assert {Webhook(k) for k in got.values()} == set(Webhook)  # all seven kinds were sent
    return got


async def test_every_acknowledged_event_of_all_kinds_is_read_typed(
    ingress: Ingress, acked: dict[str, str]
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka.BOOTSTRAP, topic_prefix=ingress.prefix)
    seen: dict[str, ConsumedEvent] = {}
    async with Consumer(settings, until_caught_up=True) as consumer:
        async for item in consumer:
            if item.event.event_id in acked:
                seen[item.event.event_id] = item
    assert sorted(set(acked) - set(seen)) == []
    assert {item.event_type for item in seen.values()} == WEBHOOK_EVENT_TYPES
    for event_id, item in seen.items():
        assert item.event_type in TOPICS[Webhook(acked[event_id])]
        assert isinstance(item.event.data, data_type(item.event_type))
        assert item.event.event_type == item.event_type.value
        assert item.event.tenant == "acme"
        assert item.record.topic == event_topic(ingress.prefix, item.event_type)


@pytest.fixture
def own_ingress(broker: str, tmp_path: Path) -> Iterator[Ingress]:
    """An ingress on topics no other test writes to, so records can be counted exactly."""
    prefix = f"cons{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    running = start_ingress(tmp_path, prefix)
    yield running
    stop_ingress(running)


def _worker(prefix: str, group: str, handled: Path, hang_after: int = 0) -> list[str]:
    return [
        sys.executable, "-m", "tests.support.consume_worker",
        "--prefix", prefix, "--group", group, "--handled", str(handled),
        "--commit-every", "40", "--hang-after", str(hang_after),
    ]  # fmt: skip


def test_killed_mid_stream_and_restarted_nothing_handled_is_lost(
    own_ingress: Ingress, tmp_path: Path
) -> None:
    acked = simulate(own_ingress, tmp_path, count=150, seed=5)
    redelivered = simulate(own_ingress, tmp_path, count=40, seed=5)  # Plug sending again
    assert set(redelivered) <= set(acked)
    topics = [own_ingress.topic(e.topic_suffix) for e in EventType]
    records = kafka.read_all(topics, until=190, want=acked)
    total, unique = len(records), len({r.event_id for r in records})
    assert (total, unique) == (190, 150)

    group, handled = f"g-{uuid.uuid4().hex[:8]}", tmp_path / "handled.txt"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP}
    with subprocess.Popen(
        _worker(own_ingress.prefix, group, handled, hang_after=100),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as first:  # fmt: skip
        try:
            assert first.stdout is not None
            assert first.stdout.readline().strip() == "hanging", first.stderr
            committed = sum(kafka.committed(group, topics).values())
        finally:
            first.send_signal(signal.SIGKILL)  # no close, no last commit
            first.wait(timeout=30)
    assert len(handled.read_text().split()) == 100
    assert committed < 100 + (total - unique)  # the event being handled was not committed

    second = subprocess.run(
        _worker(own_ingress.prefix, group, handled),
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    stats = json.loads(second.stdout.splitlines()[-1])
    ids = handled.read_text().split()
    assert len(ids) == len(set(ids)), "an event was handled twice"
    assert set(ids) == set(acked), "an acknowledged event was never handled"
    read_again = total - committed
    assert stats["delivered"] == unique - 100
    # everything read after the restart that was not new was a duplicate, removed
    assert stats["duplicates"] == read_again - (unique - 100)
    assert stats["duplicates"] > 0
    assert stats["undecodable"] == 0


class _Topic:
    """One single-partition message.status topic: a good event, a bad record, a good one."""

    def __init__(self) -> None:
        self.prefix = f"bad{uuid.uuid4().hex[:8]}"
        self.name = event_topic(self.prefix, EventType.MESSAGE_STATUS)
        kafka.create_topics([self.name], partitions=1)
        self.good = [self._good("message-status/read.json"), self._good("message-status/sent.json")]
        kafka.produce(self.name, self.good[0].value, self.good[0].key, self.good[0].headers)
        self.bad_value = b'{"event_id": "x", "payload": "from another producer"}'
        self.bad_offset = kafka.produce(self.name, self.bad_value, b"acme:1")[1]
        kafka.produce(self.name, self.good[1].value, self.good[1].key, self.good[1].headers)
        self.settings = KafkaSettings(bootstrap_servers=kafka.BOOTSTRAP, topic_prefix=self.prefix)

    def _good(self, fixture: str) -> Record:
        return ingest(Webhook.MESSAGE_STATUS, "acme", fixture_bytes(fixture), 1, self.prefix)


async def test_an_undecodable_record_stops_the_consumer_with_its_location(broker: str) -> None:
    topic = _Topic()
    group = f"g-{uuid.uuid4().hex[:8]}"
    async with Consumer(
        topic.settings, group_id=group, event_types=[EventType.MESSAGE_STATUS], until_caught_up=True
    ) as consumer:
        first = await anext(consumer)
        with pytest.raises(UndecodableRecord) as info:
            await anext(consumer)
        with pytest.raises(UndecodableRecord):  # asking again does not skip it
            await anext(consumer)
    assert first.event.event_id == topic.good[0].event_id
    error = info.value
    assert (error.topic, error.partition, error.offset) == (topic.name, 0, topic.bad_offset)
    assert error.reason == "invalid_envelope"
    assert f"{topic.name}[0]@{topic.bad_offset}" in str(error)
    # the good event before it was committed; nothing at or after the bad record was
    assert kafka.committed(group, [topic.name]) == {f"{topic.name}[0]": topic.bad_offset}


async def test_an_undecodable_record_goes_to_the_callback_and_is_committed(broker: str) -> None:
    topic = _Topic()
    group = f"g-{uuid.uuid4().hex[:8]}"
    bad: list[tuple[UndecodableRecord, RawRecord]] = []

    async def quarantine(error: UndecodableRecord, record: RawRecord) -> None:
        bad.append((error, record))

    events = []
    async with Consumer(
        topic.settings,
        group_id=group,
        event_types=[EventType.MESSAGE_STATUS],
        until_caught_up=True,
        on_undecodable=quarantine,
    ) as consumer:
        async for item in consumer:
            events.append(item.event.event_id)
    assert events == [r.event_id for r in topic.good]
    [(error, record)] = bad
    assert (error.topic, error.offset, error.reason) == (
        topic.name,
        topic.bad_offset,
        "invalid_envelope",
    )
    assert (record.offset, record.value, record.key) == (
        topic.bad_offset,
        topic.bad_value,
        b"acme:1",
    )
    assert consumer.stats.undecodable == 1
    assert kafka.committed(group, [topic.name]) == {f"{topic.name}[0]": 3}
