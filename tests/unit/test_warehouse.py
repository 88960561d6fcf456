"""The loader's pure parts (rows, batches) and the DuckDB target, which is embedded: real."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import pytest

from pipeline import ingest
from pipeline.consume.decode import decode_event
from pipeline.errors import Malformed, StaleOffsets, WarehouseError
from pipeline.record import Record
from pipeline.simulate.generator import Generator
from pipeline.warehouse import migrations
from pipeline.warehouse import tables as t
from pipeline.warehouse.batch import (
    CATCH_UP_RECORDS,
    CAUGHT_UP_RECORDS,
    DEADLETTER,
    Batch,
    Limits,
    is_behind,
)
from pipeline.warehouse.duckdb import DuckDBTarget
from pipeline.warehouse.rows import event_rows
from pipeline.warehouse.sql import ID_NUMBER, create_table, id_number, window_start
from pipeline.warehouse.target import open_target
from pipeline.webhooks import EventType, Webhook
from tests.support.payloads import corpus_files
from tests.support.warehouse import write_records

PREFIX = "plug"


def corpus_records() -> list[Record]:
    files = corpus_files()
    assert files
    records = []
    for path in files:
        webhook, body = Webhook(path.parent.name), path.read_bytes()
        try:
            records.append(ingest.ingest(webhook, "acme", body, 1_700_000_000_000, PREFIX))
        except Malformed as exc:
            records.append(ingest.deadletter(webhook, "acme", body, 0, PREFIX, exc))
    return records


def event_type(record: Record) -> EventType:
    return EventType(dict(record.headers)["event-type"].decode())


def test_every_event_gives_one_row_and_its_children() -> None:
    for record in corpus_records():
        envelope = orjson.loads(record.value)
        data = envelope["data"]
        event = decode_event(event_type(record), record.value)
        rows = list(event_rows(event, orjson.dumps(data).decode()))
        tables = [table for table, _ in rows]
        own = [tb for tb in tables if tb in t.EVENT_TABLES]
        if event_type(record) is EventType.MESSAGE_STATUS:
            assert len(own) == max(1, len(data["message_ids"]))
        else:
            assert len(own) == 1
        assert tables.count(t.ATTENDANCE_MESSAGE) == len(data.get("messages", []))
        assert tables.count(t.ATTENDANCE_CATEGORY) == len(data.get("categories", []))
        for table, row in rows:
            assert len(row) == len(table.columns), table.name
            assert row[0] == envelope["event_id"]


def test_status_rows_follow_the_ids_and_keep_an_event_without_ids() -> None:
    body = orjson.dumps(
        {"type": "MessageStatusCallback", "status": "READ", "ids": ["a", "b"], "phone": "55"}
    )
    record = ingest.ingest(Webhook.MESSAGE_STATUS, "acme", body, 1, PREFIX)
    event = decode_event(EventType.MESSAGE_STATUS, record.value)
    ids = [row[4] for _, row in event_rows(event, "{}")]
    assert ids == ["a", "b"]
    empty = ingest.ingest(Webhook.MESSAGE_STATUS, "acme", body.replace(b'"a","b"', b""), 1, "")
    event = decode_event(EventType.MESSAGE_STATUS, empty.value)
    assert [row[3:5] for _, row in event_rows(event, "{}")] == [(0, None)]


def add(batch: Batch, record: Record, offset: int) -> None:
    headers = dict(record.headers)
    source = DEADLETTER if "error-reason" in headers else event_type(record)
    batch.add(source, record.topic, 0, offset, 1, record.key, record.value, headers)


def test_a_batch_keeps_undecodable_records_and_drops_redeliveries() -> None:
    record = corpus_records()[0]
    batch = Batch()
    add(batch, record, 10)
    add(batch, record, 11)  # Plug sent it twice
    batch.add(event_type(record), record.topic, 0, 12, 1, b"k", b"\xffnot json", {})
    table = next(tb for tb in batch.rows if tb in t.EVENT_TABLES)
    assert len(batch.rows[table]) == 1
    [error] = batch.rows[t.LOAD_ERRORS]
    assert error[:3] == (record.topic, 0, 12)
    assert error[-1] == b"\xffnot json"
    assert batch.offsets == {(record.topic, 0): 13}
    assert batch.events[record.topic] == 3
    assert batch.errors[record.topic] == 1


def test_a_batch_is_full_on_rows_or_bytes() -> None:
    records = corpus_records()
    by_rows = Batch(Limits(rows=3))
    for n, record in enumerate(records[:2]):
        add(by_rows, record, n)
    assert by_rows.full() == (by_rows.row_count >= 3)
    by_bytes = Batch(Limits(bytes=10))
    add(by_bytes, records[0], 0)
    assert by_bytes.full()
    assert Batch().due_in() == Limits().age_s


def test_catch_up_limits_grow_rows_and_bytes_and_keep_the_age() -> None:
    limits = Limits(rows=10, bytes=100, age_s=0.5)
    assert limits.times(3) == Limits(rows=30, bytes=300, age_s=0.5)
    assert limits.times(1) is limits
    assert DuckDBTarget.catch_up_factor == 1  # its transactions live in its memory limit


def test_duckdb_migrates_once_and_loads_the_corpus(tmp_path: Path) -> None:
    target = DuckDBTarget(str(tmp_path / "w.duckdb"))
    assert target.migrate() == [1, 2, 3, 4, 5, 6, 7]
    assert target.migrate() == []  # versioned: the second start applies nothing
    records = corpus_records()
    batch = write_records(target, records)
    write_records(target, records)  # again: insert-if-absent
    assert json_storage(target) == {"ZSTD"}
    written = batch.rows_per_table()
    assert written[t.ATTENDANCE_MESSAGE.name] > 0
    for table in t.LOADED_TABLES:
        [(count,)] = target.query(f"SELECT count(*) FROM {table.name}")
        assert count == written.get(table.name, 0), table.name
    assert target.offsets("any") == {}  # write_records moves no offset
    target.close()


def test_duckdb_version_1_loses_its_key_indexes_and_keeps_its_rows(tmp_path: Path) -> None:
    """Version 1 declared primary keys on DuckDB: version 2 rebuilds those tables without
    them (their index lived in memory), and insert-if-absent still drops what is there."""
    target = DuckDBTarget(str(tmp_path / "w.duckdb"))
    target.execute(
        "CREATE TABLE plug_schema_migrations (version INTEGER PRIMARY KEY, "
        "name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    target.execute("INSERT INTO plug_schema_migrations VALUES (1, 'v1', now())")
    for statement in migrations.MIGRATIONS[0].statements("duckdb"):
        target.execute(statement)
    for table in t.LOADED_TABLES:
        if not table.parent:  # as version 1 made them, keys declared (and the column of
            # version 4, which this loader writes)
            keys = ", ".join(f'"{k}"' for k in table.key)
            target.execute(f'DROP TABLE "{table.name}"')
            target.execute(create_table(table, "duckdb")[:-1] + f", PRIMARY KEY ({keys}))")
    records = corpus_records()
    batch = write_records(target, records)
    assert target.query(KEYS) != []

    assert target.migrate() == [2, 3, 4, 5, 6, 7]
    assert target.query(KEYS) == []
    assert json_storage(target) == {"ZSTD"}  # version 3 kept the rows and compressed them
    write_records(target, records)
    written = batch.rows_per_table()
    assert written[t.ATTENDANCE_MESSAGE.name] > 0
    for table in t.LOADED_TABLES:
        [(count,)] = target.query(f"SELECT count(*) FROM {table.name}")
        assert count == written.get(table.name, 0), table.name
    [(views,)] = target.query("SELECT count(*) FROM kpi_daily")
    assert views > 0
    target.close()


def test_duckdb_version_3_gets_each_event_ids_number(tmp_path: Path) -> None:
    """A file at version 3 has no ``event_id_number``: version 4 adds it to the event
    tables and computes it for the rows there, which then drop their redeliveries."""
    target = DuckDBTarget(str(tmp_path / "w.duckdb"))
    target.migrate()
    records = corpus_records()
    batch = write_records(target, records)
    numbered = [table.name for table in t.LOADED_TABLES if id_number(table, "duckdb")]
    assert "message_status" in numbered  # keyed by (event_id, position), windowed too
    for name in numbered:  # as version 3 left them
        target.execute(f'ALTER TABLE "{name}" DROP COLUMN {ID_NUMBER}')
    target.execute("DELETE FROM plug_schema_migrations WHERE version = 4")

    assert target.migrate() == [4]
    written = batch.rows_per_table()
    assert written["message_status"] > 0
    for name in numbered:
        [(rows, right)] = target.query(
            f"SELECT count(*), count(*) FILTER (WHERE {ID_NUMBER} = md5_number(event_id)) "
            f'FROM "{name}"'
        )
        assert rows == right == written.get(name, 0), name
    write_records(target, records)  # every record again: nothing added
    for table in t.LOADED_TABLES:
        assert count(target, table.name) == written.get(table.name, 0), table.name
    target.close()


def test_duckdb_writes_the_children_of_new_events_only(tmp_path: Path) -> None:
    """A batch whose attendances are partly in the warehouse already: the transcript and
    categories of those are not written again, the new ones' are (staged as Arrow)."""
    target = DuckDBTarget(str(tmp_path / "w.duckdb"))
    target.migrate()
    attendances = [r for r in corpus_records() if r.topic.endswith(".attendance.finished")]
    first, rest = attendances[:1], attendances[1:]
    write_records(target, first)
    assert count(target, "attendance_message") > 0
    assert count(target, "attendance_category") > 0
    batch = write_records(target, attendances)
    assert batch.staged  # written from its Arrow form
    assert not batch.rows
    written = batch.rows_per_table()  # the first attendance's children included
    assert len(rest) > 0
    for name in ("attendance_message", "attendance_category"):
        assert count(target, name) == written[name]
    target.close()


def json_storage(target: DuckDBTarget) -> set[str]:
    """How DuckDB stores the JSON columns' rows once checkpointed, over all loaded tables."""
    target.execute("CHECKPOINT")
    found: set[str] = set()
    for table in t.LOADED_TABLES:
        json_columns = [c.name for c in table.columns if c.kind == "json"]
        for column in json_columns:
            rows = target.query(
                f"SELECT DISTINCT compression FROM pragma_storage_info('{table.name}') "
                "WHERE column_name = ? AND segment_type <> 'VALIDITY'",
                (column,),
            )
            found |= {str(r[0]) for r in rows if r[0] != "Constant"}
    return found


def count(target: DuckDBTarget, table: str) -> int:
    [(n,)] = target.query(f"SELECT count(*) FROM {table}")
    return int(n)


KEYS = (
    "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' "
    "AND table_name NOT LIKE 'plug_%'"
)


def test_a_stale_offset_writes_nothing(tmp_path: Path) -> None:
    target = DuckDBTarget(str(tmp_path / "w.duckdb"))
    target.migrate()
    record = corpus_records()[0]
    first, second = Batch(), Batch()
    add(first, record, 0)
    add(second, record, 0)
    target.write("g", first, {})
    assert target.offsets("g") == {(record.topic, 0): 1}
    with pytest.raises(StaleOffsets):
        target.write("g", second, {})  # a loader that thinks the partition is new
    with pytest.raises(StaleOffsets):
        target.write("g", second, {(record.topic, 0): 5})  # or that is elsewhere
    assert target.offsets("g") == {(record.topic, 0): 1}
    target.close()


def test_a_newer_warehouse_is_refused(tmp_path: Path) -> None:
    target = DuckDBTarget(str(tmp_path / "w.duckdb"))
    target.migrate()
    target.execute("INSERT INTO plug_schema_migrations VALUES (99, 'future', now())")
    with pytest.raises(WarehouseError, match="newer"):
        target.migrate()
    target.close()


def test_duckdb_says_why_it_refused_a_batch(tmp_path: Path) -> None:
    """The statement's own error, not the aborted transaction's that follows it."""
    target = DuckDBTarget(str(tmp_path / "w.duckdb"))
    target.migrate()
    target.execute("DROP VIEW IF EXISTS message_delivery")
    target.execute("ALTER TABLE message_sent RENAME TO message_sent_elsewhere")
    records = [r for r in corpus_records() if r.topic == f"{PREFIX}.message.sent"]
    assert records
    with pytest.raises(WarehouseError, match="message_sent") as refused:
        write_records(target, records)
    assert "aborted" not in str(refused.value)
    target.close()


@pytest.mark.parametrize(
    ("webhook", "table"),
    [(Webhook.RECEIVE_MESSAGE, "message_received"), (Webhook.MESSAGE_STATUS, "message_status")],
)
def test_duckdb_drops_a_redelivery_within_its_window_and_keeps_one_after(
    tmp_path: Path, webhook: Webhook, table: str
) -> None:
    """DuckDB looks for a batch's event ids back to ``dedup_hours`` before its earliest
    ``received_at`` (PostgreSQL's key has no window): a redelivery an hour later is
    dropped, one later than the window is a second row, as documented. ``message_status``
    (a row per message id, keyed by event_id and position) is searched the same way."""
    target = DuckDBTarget(str(tmp_path / "w.duckdb"), dedup_hours=24)
    target.migrate()
    hour, first = 3_600_000, 1_700_000_000_000

    def rows() -> int:
        return count(target, table)

    write_records(target, [delivered("acme", first, webhook)])
    per_event = rows()
    assert per_event >= 1
    # other events after it, in later batches, as a live table has
    for n in range(3):
        write_records(target, [delivered(f"t{n}", first + n * hour, webhook)])
    assert rows() == 4 * per_event
    write_records(target, [delivered("acme", first + hour, webhook)])
    write_records(target, [delivered("acme", first + 23 * hour, webhook)])
    assert rows() == 4 * per_event  # the same event_id within 24 h: dropped
    write_records(target, [delivered("acme", first + 25 * hour, webhook)])
    assert rows() == 5 * per_event
    [(ids,)] = target.query(f"SELECT count(DISTINCT event_id) FROM {table}")
    assert ids == 4
    target.close()


def test_a_batchs_window_reaches_back_from_its_earliest_event(tmp_path: Path) -> None:
    """In a batch spanning 29 hours, a redelivery of an event first seen 23 hours before
    the batch's earliest event is still found (a window from the latest would miss it)."""
    target = DuckDBTarget(str(tmp_path / "w.duckdb"), dedup_hours=24)
    target.migrate()
    hour, first = 3_600_000, 1_700_000_000_000
    write_records(target, [delivered("acme", first)])
    write_records(
        target, [delivered("acme", first + 23 * hour), delivered("beta", first + 52 * hour)]
    )
    [(rows, ids)] = target.query("SELECT count(*), count(DISTINCT event_id) FROM message_received")
    assert (rows, ids) == (2, 2)
    target.close()


def delivered(tenant: str, received_at: int, webhook: Webhook = Webhook.RECEIVE_MESSAGE) -> Record:
    """The corpus's first body of ``webhook``, as the ingress publishes it for ``tenant``."""
    body = next(p for p in corpus_files() if p.parent.name == webhook.value).read_bytes()
    return ingest.ingest(webhook, tenant, body, received_at, PREFIX)


def test_the_search_for_a_batchs_ids_starts_its_window_before_the_earliest_event() -> None:
    hour, first = 3_600_000, 1_700_000_000_000
    assert window_start(first, 24 * hour) == first - 24 * hour
    # no received_at in the batch: the whole table; times out of range stay in years 1..9999
    assert window_start(None, hour) == window_start(-(10**18), hour) == -62135596800000
    assert window_start(10**18, hour) == 253402300799999


def test_batches_at_their_bytes_limit_fit_in_duckdbs_memory_limit(tmp_path: Path) -> None:
    """DuckDB holds a transaction's rows in its buffer pool until the commit, beside the
    blocks of earlier batches not yet checkpointed: batches of simulated traffic closed on
    the default bytes limit (not on rows), one after another, are written within the
    loader's memory limit."""
    target = DuckDBTarget(str(tmp_path / "w.duckdb"))
    target.migrate()
    traffic = []
    for webhook, body in Generator(7).take(16_000):
        with contextlib.suppress(Malformed):
            ingest.ingest(webhook, "t", body, 0, PREFIX)
            traffic.append((webhook, body))
    written = 0
    for round_ in range(6):
        batch = Batch(Limits(rows=10**9))
        for n, (webhook, body) in enumerate(traffic):
            if batch.full():
                break
            add(batch, ingest.ingest(webhook, f"t{round_}", body, 0, PREFIX), n)
        assert batch.size >= Limits().bytes
        batch.offsets.clear()  # rows only: offsets are another test's
        written += len(batch.rows[t.MESSAGE_STATUS])  # before the write stages them as Arrow
        target.write("g", batch, {})
    [(count,)] = target.query("SELECT count(*) FROM message_status")
    assert count == written
    target.close()


def test_duckdbs_memory_limit_is_the_loaders_setting(tmp_path: Path) -> None:
    for mb, shown in ((None, "38.1 MiB"), (64, "61.0 MiB")):
        target = open_target(str(tmp_path / f"w{mb}.duckdb"), duckdb_memory_mb=mb)
        assert isinstance(target, DuckDBTarget)
        assert target.query("SELECT current_setting('memory_limit')") == [(shown,)]
        target.close()


def test_a_loader_is_behind_from_catch_up_records_until_fewer_than_caught_up_wait() -> None:
    assert not is_behind(CATCH_UP_RECORDS - 1, was_behind=False)
    assert is_behind(CATCH_UP_RECORDS, was_behind=False)
    assert is_behind(CAUGHT_UP_RECORDS, was_behind=True)  # still catching up
    assert not is_behind(CAUGHT_UP_RECORDS - 1, was_behind=True)
    assert not is_behind(CAUGHT_UP_RECORDS, was_behind=False)


def test_duckdb_checkpoints_less_often_while_far_behind(tmp_path: Path) -> None:
    """The checkpoint threshold follows the batches: larger while the loader is behind."""
    target = DuckDBTarget(str(tmp_path / "w.duckdb"))
    target.migrate()
    records = corpus_records()

    def threshold_after(far_behind: bool) -> str:
        batch = Batch()
        for n, record in enumerate(records[:3]):
            add(batch, record, n)
        batch.offsets.clear()
        batch.behind = far_behind
        target.write("g", batch, {})
        [(shown,)] = target.query("SELECT current_setting('checkpoint_threshold')")
        return str(shown)

    small = threshold_after(False)
    large = threshold_after(True)
    assert large != small
    assert threshold_after(False) == small
    target.close()
