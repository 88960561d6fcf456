"""Kafka first, the spool when Kafka is away, and order kept across the switch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.record import Record
from pipeline.sink.memory import MemorySink
from pipeline.sink.spooled import SpooledSink


def record(n: int) -> Record:
    return Record(topic="plug.t", key=b"acme:1", value=str(n).encode(), headers=[], event_id=str(n))


async def drained(sink: SpooledSink) -> None:
    """Until the spool is empty: the drain task runs on this loop."""
    spool = sink.spool
    assert spool is not None
    while spool.depth:  # noqa: ASYNC110 - the spool offers no "empty" event to await
        await asyncio.sleep(0.01)  # yields to the drain task; the loop ends on the condition


async def test_published_while_kafka_answers(tmp_path: Path) -> None:
    kafka = MemorySink()
    sink = SpooledSink(kafka, str(tmp_path), 1024 * 1024)
    await sink.start()
    try:
        assert await sink.publish([record(1)]) == "published"
        assert [r.event_id for r in kafka.records] == ["1"]
    finally:
        await sink.stop()


async def test_spooled_while_away_then_drained_in_order(tmp_path: Path) -> None:
    kafka = MemorySink()
    sink = SpooledSink(kafka, str(tmp_path), 1024 * 1024)
    await sink.start()
    try:
        kafka.available = False
        assert await sink.publish([record(1), record(2)]) == "spooled"
        kafka.available = True
        # the spool still holds 1 and 2: 3 must queue behind them, not overtake them
        assert await sink.publish([record(3)]) == "spooled"
        await asyncio.wait_for(drained(sink), 10)
        assert [r.event_id for r in kafka.records] == ["1", "2", "3"]
        assert await sink.publish([record(4)]) == "published"  # empty again: Kafka first
        assert sink.describe()["spool_depth"] == 0
    finally:
        await sink.stop()


async def test_spooled_records_survive_a_restart(tmp_path: Path) -> None:
    away = MemorySink()
    away.available = False
    first = SpooledSink(away, str(tmp_path), 1024 * 1024)
    await first.start()
    assert await first.publish([record(1)]) == "spooled"
    await first.stop()

    kafka = MemorySink()
    second = SpooledSink(kafka, str(tmp_path), 1024 * 1024)
    await second.start()
    try:
        await asyncio.wait_for(drained(second), 10)
        assert [r.event_id for r in kafka.records] == ["1"]
    finally:
        await second.stop()


async def test_one_process_per_spool_directory(tmp_path: Path) -> None:
    first = SpooledSink(MemorySink(), str(tmp_path), 1024 * 1024)
    await first.start()
    try:
        with pytest.raises(ConfigError, match="in use"):
            await SpooledSink(MemorySink(), str(tmp_path), 1024 * 1024).start()
    finally:
        await first.stop()
