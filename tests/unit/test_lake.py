"""The Iceberg target on a SQLite catalog and a local folder (embedded, so real): the same
rows and KPI figures as DuckDB, idempotent writes, offsets and stale loaders."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ConfigError, StaleOffsets
from pipeline.lake.catalog import parse
from pipeline.lake.target import IcebergTarget
from pipeline.record import Record
from pipeline.report import queries
from pipeline.report.model import Filters
from pipeline.report.source import LakeSource, open_source
from pipeline.simulate.generator import Generator
from pipeline.warehouse.batch import Batch
from pipeline.warehouse.duckdb import DuckDBTarget
from pipeline.warehouse.target import open_target
from pipeline.webhooks import EventType, Webhook
from tests.support.lake import (
    duckdb_tables,
    duckdb_views,
    lake_address,
    lake_tables,
    lake_views,
    rounded,
)
from tests.support.loader import record_for
from tests.support.warehouse import write_records
from tests.unit.test_warehouse import corpus_records, event_type

PREFIX = "plug"


def traffic() -> list[Record]:
    """The corpus and a minute of simulated traffic: every table gets rows."""
    simulated = [record_for(w, body, PREFIX) for w, body in Generator(11).take(400)]
    bad = [record_for(Webhook.RECEIVE_MESSAGE, b"{not json %d" % i, PREFIX) for i in range(3)]
    return corpus_records() + simulated + bad


def test_the_lake_holds_the_same_rows_and_kpis_as_duckdb(tmp_path: Path) -> None:
    records = traffic()
    address = lake_address(tmp_path)
    lake = open_target(address)
    assert isinstance(lake, IcebergTarget)
    assert lake.migrate() == [1]
    assert lake.migrate() == []
    duck = DuckDBTarget(str(tmp_path / "w.duckdb"))
    duck.migrate()
    for target in (lake, duck):
        write_records(target, records[:200])
        write_records(target, records)  # overlapping: the rows already there are dropped
    lake.close()
    duck.close()
    got, want = lake_tables(address), duckdb_tables(str(tmp_path / "w.duckdb"))
    assert {name for name, rows in want.items() if rows} >= {
        "attendance_finished",
        "attendance_message",
        "message_status",
        "deadletter",
    }
    for name, rows in want.items():
        assert got[name] == rows, name
    got_views, want_views = lake_views(address), duckdb_views(str(tmp_path / "w.duckdb"))
    assert want_views["kpi_daily"]
    for name, rows in want_views.items():
        assert got_views[name] == rows, name
    # the report reads the lake as it reads DuckDB
    with open_source(address) as source:
        assert isinstance(source, LakeSource)
        from_lake = queries.build(source, Filters())
    with open_source(str(tmp_path / "w.duckdb")) as source:
        from_duckdb = queries.build(source, Filters())
    assert from_lake.days
    assert rounded(from_lake) == rounded(from_duckdb)


def _batch(records: list[Record], partition: int, first: int) -> Batch:
    batch = Batch()
    for i, record in enumerate(records):
        batch.add(
            event_type(record), record.topic, partition, first + i, 0, record.key,
            record.value, record.headers,
        )  # fmt: skip
    return batch


def sent(n: int) -> list[Record]:
    return [
        r
        for r in corpus_records() + traffic()
        if event_type_or_none(r) is EventType.MESSAGE_RECEIVED
    ][:n]


def event_type_or_none(record: Record) -> EventType | None:
    headers = dict(record.headers)
    return event_type(record) if "event-type" in headers and "error-reason" not in headers else None


def test_offsets_move_with_the_rows_and_a_stale_loader_writes_nothing(tmp_path: Path) -> None:
    lake = IcebergTarget(lake_address(tmp_path))
    lake.migrate()
    records = sent(30)
    topic = records[0].topic
    assert lake.offsets("g") == {}
    lake.write("g", _batch(records[:10], 0, 0), {})
    assert lake.offsets("g") == {(topic, 0): 10}
    assert lake.offsets("other") == {}
    lake.write("g", _batch(records[10:20], 0, 10), {(topic, 0): 10})
    assert lake.offsets("g") == {(topic, 0): 20}
    before = lake.table("message_received").current_snapshot()
    with pytest.raises(StaleOffsets):  # expects 10: another loader moved it on
        lake.write("g", _batch(records[20:30], 0, 20), {(topic, 0): 10})
    assert lake.table("message_received").current_snapshot() == before
    assert lake.offsets("g") == {(topic, 0): 20}


def test_two_targets_writing_the_same_rows_at_once_write_each_once(tmp_path: Path) -> None:
    address = lake_address(tmp_path)
    first = IcebergTarget(address)
    first.migrate()
    # events only: write_records numbers a dead letter's offset by its place in a call
    records = [r for r in traffic() if event_type_or_none(r) is not None][:240]
    errors: list[BaseException] = []

    def write(target: IcebergTarget) -> None:
        try:
            for i in range(0, len(records), 60):
                write_records(target, records[i : i + 90])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(IcebergTarget(address),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    duck = DuckDBTarget(str(tmp_path / "w.duckdb"))
    duck.migrate()
    write_records(duck, records)
    duck.close()
    got, want = lake_tables(address), duckdb_tables(str(tmp_path / "w.duckdb"))
    for name, rows in want.items():
        assert got[name] == rows, name


def test_a_redelivery_within_the_window_is_dropped(tmp_path: Path) -> None:
    lake = IcebergTarget(lake_address(tmp_path), dedup_hours=1)
    lake.migrate()
    [record] = sent(1)
    write_records(lake, [record])
    write_records(lake, [record])
    assert lake.table("message_received").scan().to_arrow().num_rows == 1


@pytest.mark.parametrize(
    "address",
    ["iceberg+mysql://x@h/db", "iceberg+postgresql://u@h/db", "iceberg+sqlite:////t/c.db?x=1"],
)
def test_an_iceberg_address_is_checked(address: str) -> None:
    with pytest.raises(ConfigError):
        parse(address)


def test_an_iceberg_address_says_where_without_its_password() -> None:
    lake = parse("iceberg+postgresql://u:secret@h:5432/db?warehouse=s3://b/w&namespace=cc")
    assert lake.catalog_uri == "postgresql+psycopg://u:secret@h:5432/db"
    assert (lake.warehouse, lake.namespace) == ("s3://b/w", "cc")
    assert "secret" not in lake.describe()


def test_a_write_stopped_between_a_parent_and_its_children_is_completed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Iceberg commits one table at a time: a loader killed after an attendance's commit
    and before its transcript's leaves the event without children until the batch is
    written again, which must find the event and still write its children, once."""
    address = lake_address(tmp_path)
    lake = IcebergTarget(address)
    lake.migrate()
    records = traffic()
    real = IcebergTarget._children
    calls = 0

    def stopped(self: IcebergTarget, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # the parents are in; the first child table is not
            raise KeyboardInterrupt("killed")
        real(self, *args)

    monkeypatch.setattr(IcebergTarget, "_children", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_records(lake, records)
    monkeypatch.setattr(IcebergTarget, "_children", real)
    assert lake.table("attendance_finished").scan().to_arrow().num_rows > 0
    write_records(lake, records)  # the replay
    write_records(lake, records)  # and a redelivery of everything: nothing more
    duck = DuckDBTarget(str(tmp_path / "w.duckdb"))
    duck.migrate()
    write_records(duck, records)
    duck.close()
    got, want = lake_tables(address), duckdb_tables(str(tmp_path / "w.duckdb"))
    assert want["attendance_message"]
    for name, rows in want.items():
        assert got[name] == rows, name
