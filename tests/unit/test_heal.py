"""Healing without a restart: errors classified, poison set aside, background work supervised."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiokafka.errors import (
    InvalidTopicError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    TopicAuthorizationFailedError,
    UnknownProducerId,
)

from pipeline.config import Config
from pipeline.errors import BrokerUnavailable, RefusedByKafka, TooLargeForKafka
from pipeline.record import Record
from pipeline.runtime.logfilter import Throttle
from pipeline.runtime.metrics import METRICS
from pipeline.runtime.tasks import supervise
from pipeline.sink.base import Durability
from pipeline.sink.kafka import KafkaSink, classify
from pipeline.sink.memory import MemorySink
from pipeline.sink.spooled import TRUNCATED_BYTES, SpooledSink, lock

DEAD = "plug.deadletter"


def record(n: int, size: int = 10, topic: str = "plug.t") -> Record:
    value = str(n).encode().ljust(size, b".")
    return Record(topic=topic, key=b"acme:1", value=value, headers=[], event_id=f"e{n}")


async def until(condition: str, check: object, timeout_s: float = 10.0) -> None:
    """Poll ``check()`` on this loop (the sink's tasks run meanwhile) until it is true."""
    assert callable(check)
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 - nothing to await but the condition itself
            await asyncio.sleep(0.01)


# -- aiokafka's errors across the edge -----------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OutOfOrderSequenceNumber(), "fatal"),
        (UnknownProducerId(), "fatal"),
        (KafkaError("Unexpected error during batch delivery"), "fatal"),
        (MessageSizeTooLargeError(), "refused"),
        (TopicAuthorizationFailedError(), "denied"),
        (InvalidTopicError(), "refused"),
        (KafkaConnectionError(), "transient"),
        (KafkaTimeoutError(), "transient"),
        (NotLeaderForPartitionError(), "transient"),
        (OSError("connection reset"), "transient"),
    ],
)
def test_errors_keep_their_retriable_flag(error: BaseException, kind: str) -> None:
    assert classify(error) == kind


# -- supervised background work ------------------------------------------------------------


async def test_a_supervised_task_is_restarted_after_it_raises() -> None:
    runs: list[int] = []
    before = METRICS.background_restarts.labels("flaky")._value.get()

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError("boom")

    task = supervise("flaky", flaky, restart_delay_s=0.01)
    await asyncio.wait_for(task, 5)
    assert runs == [0, 1, 2]
    assert METRICS.background_restarts.labels("flaky")._value.get() == before + 2


class ChaoticKafka(MemorySink):
    """Raises an arbitrary exception on a share of publishes: not only Kafka's own."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.random = random.Random(seed)
        self.raised = 0

    async def publish(self, records: Sequence[Record]) -> Durability:
        if self.random.random() < 0.3:
            self.raised += 1
            raise self.random.choice([RuntimeError, KeyError, ValueError, ZeroDivisionError])()
        return await super().publish(records)


async def test_the_drain_loop_survives_arbitrary_exceptions_and_drains(tmp_path: Path) -> None:
    kafka = ChaoticKafka(seed=7)
    kafka.available = False
    sink = SpooledSink(kafka, str(tmp_path), 1024 * 1024)
    await sink.start()
    try:
        for n in range(50):
            assert await sink.publish([record(n)]) == "spooled"
        kafka.available = True
        spool = sink.spool
        assert spool is not None
        await until("drained", lambda: spool.depth == 0, 30)
        assert kafka.raised > 0
        first_seen = list(dict.fromkeys(r.event_id for r in kafka.records))
        assert first_seen == [f"e{n}" for n in range(50)]  # every record, in order
    finally:
        await sink.stop()


async def test_the_drain_loop_is_restarted_when_the_spool_itself_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = MemorySink()
    kafka.available = False
    sink = SpooledSink(kafka, str(tmp_path), 1024 * 1024)
    await sink.start()
    try:
        spool = sink.spool
        assert spool is not None
        real_drain = spool.drain
        failures = [RuntimeError("a bug in the drain"), AttributeError("another")]

        async def failing_drain(*args: object, **kwargs: object) -> int:
            if failures:
                raise failures.pop()
            return await real_drain(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(spool, "drain", failing_drain)
        assert await sink.publish([record(1)]) == "spooled"
        kafka.available = True
        await until("drained", lambda: spool.depth == 0, 30)
        assert [r.event_id for r in kafka.records] == ["e1"]
        assert failures == []
    finally:
        await sink.stop()


# -- records Kafka will never take ---------------------------------------------------------


async def test_a_refused_record_is_never_spooled_and_becomes_a_dead_letter(
    tmp_path: Path,
) -> None:
    kafka = MemorySink()
    kafka.max_value_bytes["plug.t"] = 1000
    sink = SpooledSink(kafka, str(tmp_path), 1024 * 1024, deadletter_topic=DEAD)
    await sink.start()
    try:
        with pytest.raises(TooLargeForKafka) as refused:
            await sink.publish([record(1, size=5000)])
        assert [r.event_id for r in refused.value.refused] == ["e1"]
        assert sink.describe()["spool_depth"] == 0
        [dead] = kafka.records
        headers = dict(dead.headers)
        assert (dead.topic, dead.event_id, len(dead.value)) == (DEAD, "e1", 5000)
        assert headers["error-reason"] == b"too_large_for_kafka"
        assert headers["original-topic"] == b"plug.t"
        # what comes next is published, not queued behind anything
        for n in range(2, 22):
            assert await sink.publish([record(n)]) == "published"
    finally:
        await sink.stop()


async def test_too_large_even_for_the_dead_letters_goes_to_quarantine(tmp_path: Path) -> None:
    kafka = MemorySink()
    kafka.max_value_bytes |= {"plug.t": 1000, DEAD: TRUNCATED_BYTES + 100}
    sink = SpooledSink(kafka, str(tmp_path), 4 * 1024 * 1024, deadletter_topic=DEAD)
    await sink.start()
    try:
        with pytest.raises(RefusedByKafka):
            await sink.publish([record(1, size=300_000)])
        [pointer] = kafka.records
        headers = dict(pointer.headers)
        assert headers["truncated"] == b"true"
        assert len(pointer.value) == TRUNCATED_BYTES
        kept = Path(headers["quarantine-file"].decode())
        body = await asyncio.to_thread(kept.read_bytes)
        assert body == record(1, size=300_000).value  # every byte, on disk
        assert await asyncio.to_thread(kept.with_suffix(".json").exists)
    finally:
        await sink.stop()


async def test_a_poison_record_at_the_spool_head_is_moved_aside(tmp_path: Path) -> None:
    kafka = MemorySink()
    kafka.available = False
    sink = SpooledSink(kafka, str(tmp_path), 4 * 1024 * 1024, deadletter_topic=DEAD)
    await sink.start()
    try:
        await sink.publish([record(1)])
        await sink.publish([record(2, size=50_000)])  # spooled: Kafka was away
        await sink.publish([record(3)])
        kafka.max_value_bytes["plug.t"] = 1000
        kafka.available = True
        spool = sink.spool
        assert spool is not None
        await until("drained", lambda: spool.depth == 0)
        assert [r.event_id for r in kafka.records if r.topic == "plug.t"] == ["e1", "e3"]
        assert [r.event_id for r in kafka.records if r.topic == DEAD] == ["e2"]
    finally:
        await sink.stop()


# -- stopping --------------------------------------------------------------------------------


async def test_stop_drains_what_it_can_before_closing(tmp_path: Path) -> None:
    kafka = MemorySink()
    kafka.available = False
    sink = SpooledSink(kafka, str(tmp_path), 1024 * 1024, shutdown_drain_s=5)
    await sink.start()
    for n in range(5):
        await sink.publish([record(n)])
    spool = sink.spool
    assert spool is not None
    kafka.available = True
    await sink.stop()
    assert spool.depth == 0
    assert sorted({r.event_id for r in kafka.records}) == [f"e{n}" for n in range(5)]


class BrokenReady(MemorySink):
    async def ready(self) -> bool:
        raise RuntimeError("unexpected")


async def test_stop_closes_everything_even_after_a_failure(tmp_path: Path) -> None:
    kafka = BrokenReady()
    kafka.available = False
    sink = SpooledSink(kafka, str(tmp_path), 1024 * 1024)
    await sink.start()
    await sink.publish([record(1)])
    spool = sink.spool
    assert spool is not None
    await sink.stop()
    assert not spool.writable  # closed
    assert kafka.started is False  # the producer was stopped
    fd = lock(tmp_path)  # the lock was released
    assert fd >= 0


async def test_health_reports_what_cannot_heal(tmp_path: Path) -> None:
    kafka = MemorySink()
    sink = SpooledSink(kafka, str(tmp_path), 1024 * 1024)
    await sink.start()
    try:
        assert sink.health() is None
        kafka.unhealthy = "no record taken for 300 s despite 3 new producers"
        assert sink.health() == kafka.unhealthy
    finally:
        await sink.stop()


def test_unavailable_is_still_retriable() -> None:
    assert BrokerUnavailable("x").retriable


# -- the log throttle ------------------------------------------------------------------------


def test_a_library_retry_loop_cannot_flood_the_log() -> None:
    now = [0.0]
    throttle = Throttle(("aiokafka",), every_s=30, clock=lambda: now[0])

    def rec(name: str, msg: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, "f", 1, msg, None, None)

    shown = [throttle.filter(rec("aiokafka.conn", "Unable connect to %s")) for _ in range(1000)]
    assert shown.count(True) == 1
    assert throttle.filter(rec("aiokafka.conn", "another message"))  # per template
    assert all(throttle.filter(rec("pipeline.sink", "ours")) for _ in range(10))  # not ours
    now[0] = 31.0
    later = rec("aiokafka.conn", "Unable connect to %s")
    assert throttle.filter(later)
    assert "999 more like this" in str(later.msg)


def test_denied_writes_are_kept_and_make_the_ingress_unhealthy_until_taken() -> None:
    sink = KafkaSink(Config(ack_timeout_s=1.0))
    record = Record("t.message.received", b"k", b"v", [], "e1")
    denied = TopicAuthorizationFailedError()
    with pytest.raises(BrokerUnavailable):  # NotDurable: the caller spools the record
        sink._outcome(object(), [record], [denied], 0.0)
    reason = sink.health()
    assert reason is not None
    assert "denies this client's writes" in reason
    assert "TopicAuthorizationFailedError" in reason
    sink._acknowledged([record], 0.0)  # the denial lifted: a record taken
    assert sink.health() is None
