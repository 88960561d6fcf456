"""How the loader fills its batches from Kafka's fetches: a batch closes at its limits
however much one fetch brought (a fetch of compressed records holds many batches' worth),
and what was left over starts the next batch, in order, offsets included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from pipeline import config as configuration
from pipeline import ingest
from pipeline.warehouse.batch import Batch, Limits
from pipeline.warehouse.duckdb import DuckDBTarget
from pipeline.warehouse.loader import FETCH_RECORDS, Fetched, Loader, Options
from pipeline.warehouse.metrics import LoaderMetrics
from pipeline.webhooks import Webhook

PREFIX = "plug"
RECEIVED = TopicPartition(f"{PREFIX}.message.received", 0)
OTHER = TopicPartition(f"{PREFIX}.message.received", 1)


def received(n: int, padding: int = 0) -> bytes:
    """A received message's event (one row), ``n`` making it distinct."""
    body = orjson.dumps(
        {
            "type": "ReceivedCallback",
            "phone": "5511999990000",
            "messageId": f"m{n}",
            "momment": 1_735_700_000_000 + n,
            "fromMe": False,
            "instanceId": "unit",
            "text": {"message": f"message {n} " + "x" * padding},
        }
    )
    record = ingest.ingest(Webhook.RECEIVE_MESSAGE, "acme", body, 1_700_000_000_000, PREFIX)
    return record.value


def records(tp: TopicPartition, first: int, n: int, padding: int = 0) -> list[Any]:
    """``n`` records of ``tp`` from offset ``first``, as aiokafka hands them over."""
    out = []
    for offset in range(first, first + n):
        value = received(tp.partition * 1000 + offset, padding)
        ts, key = 1_700_000_000_000, b"key"
        record = ConsumerRecord(
            tp.topic, tp.partition, offset, ts, 0, key, value, None, len(key), len(value), ()
        )
        out.append(record)
    return out


@pytest.fixture
def loader(tmp_path: Path) -> Loader:
    target = DuckDBTarget(str(tmp_path / "unit.duckdb"))
    made = Loader(configuration.load({}), target, Options(), LoaderMetrics())
    for tp in (RECEIVED, OTHER):
        made.stored[(tp.topic, tp.partition)] = 0
        made.next[(tp.topic, tp.partition)] = 0
    return made


def offsets(fetched: Fetched) -> list[tuple[int, list[int]]]:
    return [(tp.partition, [r.offset for r in recs]) for tp, recs in fetched]


def test_a_full_batch_leaves_the_rest_of_a_fetch_for_the_next_in_order(loader: Loader) -> None:
    loader.batch = Batch(Limits(rows=10))
    fetched = [(RECEIVED, records(RECEIVED, 0, 8)), (OTHER, records(OTHER, 0, 8))]

    below, rest = loader._add(fetched)

    assert below == []
    assert loader.batch.records == loader.batch.row_count == 10
    assert loader.batch.offsets == {(RECEIVED.topic, 0): 8, (OTHER.topic, 1): 2}
    assert offsets(rest) == [(1, [2, 3, 4, 5, 6, 7])]
    assert loader.next[(OTHER.topic, 1)] == 2  # where the next batch goes on

    loader.batch = Batch(Limits(rows=10))
    below, rest = loader._add(rest)
    assert (below, rest) == ([], [])
    assert loader.batch.offsets == {(OTHER.topic, 1): 8}
    assert loader.next[(OTHER.topic, 1)] == 8


def test_a_batch_closes_on_bytes_after_the_record_that_filled_it(loader: Loader) -> None:
    fetched = [(RECEIVED, records(RECEIVED, 0, 6, padding=500))]
    size = len(fetched[0][1][0].value)
    loader.batch = Batch(Limits(bytes=2 * size))  # full with the second record

    _, rest = loader._add(fetched)

    assert loader.batch.records == 2
    assert offsets(rest) == [(0, [2, 3, 4, 5])]


def test_records_a_fetch_repeats_are_skipped_before_the_batch_fills(loader: Loader) -> None:
    loader.next[(RECEIVED.topic, 0)] = 3  # 0-2 are in the warehouse already
    loader.batch = Batch(Limits(rows=2))

    below, rest = loader._add([(RECEIVED, records(RECEIVED, 0, 6))])

    assert below == [RECEIVED]
    assert loader.batch.offsets == {(RECEIVED.topic, 0): 5}
    assert offsets(rest) == [(0, [5])]


def test_a_fetch_asks_for_what_the_batch_has_room_for(loader: Loader) -> None:
    loader.batch = Batch(Limits(rows=100, bytes=10**9))
    assert loader._room() == 101  # nothing known yet: a row a record
    loader._add([(RECEIVED, records(RECEIVED, 0, 40))])
    assert loader._room() == 61  # one row a record, 60 rows left

    size = loader.batch.size / loader.batch.records
    loader.batch = Batch(Limits(rows=10**9, bytes=int(size * 50)))
    loader._add([(RECEIVED, records(RECEIVED, 40, 20))])
    assert 30 <= loader._room() <= 31  # by bytes: about 30 records as large as these


def test_a_fetch_asks_for_no_more_than_a_few_hundred_records(loader: Loader) -> None:
    """However much room a batch has: the records of one fetch are alive together."""
    loader.batch = Batch(Limits(rows=10**9, bytes=10**12))
    loader._add([(RECEIVED, records(RECEIVED, 0, 10))])
    assert loader._room() == FETCH_RECORDS
