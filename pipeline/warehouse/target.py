"""The target seam: what the loader asks of a warehouse, and the parts both targets share.

A target writes one batch's rows and moves its partitions' offsets in one transaction;
the offset move checks the offset the loader expected to find, so a stale loader (one
that lost the partition, or that retries a write which had in fact committed) raises
``StaleOffsets`` and writes nothing. ``open_target`` picks the target from the address;
``write_records`` writes ingress records without Kafka (for tests of the views).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pipeline.consume.decode import event_type_of_header
from pipeline.errors import StaleOffsets
from pipeline.record import Record
from pipeline.warehouse.batch import DEADLETTER, RAW, TP, Batch, Source
from pipeline.warehouse.sql import Dialect, q
from pipeline.warehouse.tables import OFFSETS_TABLE
from pipeline.warehouse.views import ViewSettings


class Target(Protocol):
    @property
    def dialect(self) -> Dialect: ...

    @property
    def catch_up_factor(self) -> int:
        """How many times larger the batches are while the loader is behind."""
        ...

    def describe(self) -> str:
        """Where it writes, without secrets."""
        ...

    def migrate(self) -> list[int]:
        """Create or migrate the tables, then (re)create the views; the versions applied."""
        ...

    def offsets(self, group: str) -> dict[TP, int]:
        """The next offset to load of every partition the group has loaded from."""
        ...

    def prepare(self, batch: Batch) -> None:
        """Turn a closed batch's rows into what ``write`` hands over (``batch.staged``), on
        the caller's thread: the loader calls it on its event loop, so this work, which
        holds Python's GIL, overlaps the write of the batch before instead of delaying it.
        ``write`` prepares a batch that was not."""
        ...

    def write(self, group: str, batch: Batch, expected: Mapping[TP, int | None]) -> None:
        """Rows and offsets in one transaction; ``expected`` is each partition's stored
        offset as the loader knows it (None: no row yet)."""
        ...

    def close(self) -> None: ...


class Session(Protocol):
    def changed(self, sql: str, params: Sequence[Any]) -> int:
        """Execute; the number of rows inserted or updated."""
        ...


def move_offsets(
    session: Session, group: str, offsets: Mapping[TP, int], expected: Mapping[TP, int | None]
) -> None:
    """Each partition's offset from what the loader expected to what it has now loaded.
    The partitions already in the table move in one statement (a batch spans dozens of
    partitions: one statement each was a round trip each on PostgreSQL)."""
    moved = []
    for (topic, partition), new in offsets.items():
        old = expected.get((topic, partition))
        if old is None:
            changed = session.changed(
                f"INSERT INTO {OFFSETS_TABLE} (group_name, topic, {q('partition')}, next_offset, "
                "updated_at) VALUES (?, ?, ?, ?, now()) ON CONFLICT DO NOTHING",
                (group, topic, partition, new),
            )
            if changed != 1:
                raise _stale(group, [(topic, partition, old)])
        else:
            moved.append((topic, partition, old, new))
    if not moved:
        return
    values = ", ".join(
        ["(CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS BIGINT), CAST(? AS BIGINT))"] * len(moved)
    )
    changed = session.changed(
        f"UPDATE {OFFSETS_TABLE} SET next_offset = v.new, updated_at = now() "
        f"FROM (VALUES {values}) AS v(topic, part, old, new) WHERE group_name = ? "
        f"AND {OFFSETS_TABLE}.topic = v.topic AND {OFFSETS_TABLE}.{q('partition')} = v.part "
        f"AND {OFFSETS_TABLE}.next_offset = v.old",
        (*(x for row in moved for x in row), group),
    )
    if changed != len(moved):  # the transaction is rolled back: nothing moved
        raise _stale(group, [(topic, partition, old) for topic, partition, old, _ in moved])


def _stale(group: str, where: list[tuple[str, int, int | None]]) -> StaleOffsets:
    said = ", ".join(f"{topic}[{partition}] at {old}" for topic, partition, old in where)
    return StaleOffsets(
        f"the warehouse no longer holds the offsets expected for group {group!r} "
        f"({'one of ' if len(where) > 1 else ''}{said}); another loader moved it on"
    )


OFFSETS_QUERY = (
    f"SELECT topic, {q('partition')}, next_offset FROM {OFFSETS_TABLE} WHERE group_name = ?"
)


def open_target(
    where: str,
    view_settings: ViewSettings | None = None,
    dedup_hours: float | None = None,
    duckdb_memory_mb: int | None = None,
) -> Target:
    """A ``postgresql://`` URL, or else a DuckDB file path; its KPI views are created with
    ``view_settings`` (the defaults when None). ``dedup_hours``: DuckDB's window for
    redeliveries (its default when None; PostgreSQL drops a redelivery of any age);
    ``duckdb_memory_mb``: DuckDB's memory limit (its default when None)."""
    if where.startswith(("postgresql://", "postgres://")):
        from pipeline.warehouse.postgres import PostgresTarget

        return PostgresTarget(where, view_settings)
    from pipeline.warehouse.duckdb import DEDUP_HOURS, MEMORY_MB, DuckDBTarget

    return DuckDBTarget(
        where,
        view_settings,
        DEDUP_HOURS if dedup_hours is None else dedup_hours,
        MEMORY_MB if duckdb_memory_mb is None else duckdb_memory_mb,
    )


def write_records(target: Target, records: Iterable[Record]) -> Batch:
    """Write ingress records (events and dead letters) as the loader would, without Kafka
    and without moving any offset. Each record counts as offset n of partition 0."""
    batch = Batch()
    for offset, record in enumerate(records):
        headers = dict(record.headers)
        source: Source | None
        if "error-reason" in headers:
            source = DEADLETTER
        elif "event-type" in headers:
            source = event_type_of_header(headers["event-type"])
        else:
            source = RAW
        if source is None:
            raise ValueError(f"record {record.event_id}: unknown event type")
        batch.add(source, record.topic, 0, offset, 0, record.key, record.value, headers)
    batch.offsets.clear()
    target.write("", batch, {})
    return batch
