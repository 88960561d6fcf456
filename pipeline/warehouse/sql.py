"""SQL text for both dialects, derived from ``tables.py``: DDL, staging, insert-if-absent;
and the ``Session`` that runs it.

Rows are staged with times as epoch milliseconds and JSON as text; the insert from the
staging relation into the table converts them. A time outside years 1..9999 (a sender's
bug) becomes null instead of failing the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pipeline.warehouse.tables import Column, Kind, Table

Dialect = Literal["duckdb", "postgresql"]


class Session(Protocol):
    """The little migrations and the offset moves need of a connection, in one
    transaction; ``?`` marks a parameter whatever the dialect."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def changed(self, sql: str, params: Sequence[Any]) -> int:
        """Execute; the number of rows inserted or updated."""
        ...


TYPES: dict[Dialect, dict[Kind, str]] = {
    "duckdb": {
        "text": "VARCHAR",
        "bigint": "BIGINT",
        "int": "INTEGER",
        "bool": "BOOLEAN",
        "ts": "TIMESTAMPTZ",
        "json": "JSON",
        "bytes": "BLOB",
    },
    "postgresql": {
        "text": "text",
        "bigint": "bigint",
        "int": "integer",
        "bool": "boolean",
        "ts": "timestamptz",
        "json": "jsonb",
        "bytes": "bytea",
    },
}
# How a column travels before the final insert converts it.
STAGED: dict[Kind, Kind] = {"ts": "bigint", "json": "text"}

_MIN_MS, _MAX_MS = -62135596800000, 253402300799999  # 0001-01-01 .. 9999-12-31 UTC


def q(name: str) -> str:
    """A quoted identifier: ``offset`` and ``partition`` are reserved words."""
    return '"' + name.replace('"', '""') + '"'


def indexed(table: Table, dialect: Dialect) -> bool:
    """Whether the key is a constraint: on PostgreSQL only. DuckDB keeps a key index (ART)
    wholly in memory, slower to insert into than an anti-join and past a few million rows
    larger than the loader's memory limit; there the insert skips keys already present."""
    return dialect == "postgresql"


# DuckDB's storage of a column where its default is the wrong trade for the loader. The
# JSON documents (each event's whole data) are most of a table's bytes, and the default
# tries dictionary and FSST compression on them at every checkpoint: with zstd a
# checkpoint of 90,000 events took 0.6 s instead of 1.2-1.6 s and the file was 14.7 MB
# instead of 44.6 (bench/RESULTS.md). The short text columns the views filter and group
# on keep DuckDB's choice (zstd for them too made the file larger: 20.7 MB).
STORAGE: dict[Dialect, dict[Kind, str]] = {
    "duckdb": {"json": " USING COMPRESSION zstd"},
    "postgresql": {},  # lz4 for large values is the session's default (postgres._LZ4)
}


# DuckDB's event tables carry one column beyond the contract: each event_id's MD5 as a
# 128-bit number, which the insert's search for a batch's ids reads instead of the ids.
# With 2.1 million rows of message_status in the window, the anti-join on the text ids
# took 70 ms a batch, on the numbers 14 (on 0.95 million of message_received, 35 and 6.5;
# bench/RESULTS.md): 16 fixed bytes a row to compare instead of 32 characters. Two events
# share a number only if the MD5s of their ids collide, no likelier than two webhooks
# sharing an id (itself 128 bits of a SHA-256). MD5 rather than DuckDB's ``hash()``: a
# number kept in the file must not change with DuckDB's version.
ID_NUMBER = "event_id_number"


def id_number(table: Table, dialect: Dialect) -> bool:
    """Whether ``table`` has ``ID_NUMBER`` (where the insert takes the window's start)."""
    return takes_window(table, dialect)


def id_number_of(expr: str) -> str:
    return f"md5_number({expr})"


def create_table(table: Table, dialect: Dialect, name: str | None = None) -> str:
    """``table``'s DDL, created as ``name`` when given (a rebuild)."""
    types, storage = TYPES[dialect], STORAGE[dialect]
    columns = [f"{q(c.name)} {types[c.kind]}{storage.get(c.kind, '')}" for c in table.columns]
    if id_number(table, dialect):
        columns.append(f"{q(ID_NUMBER)} UHUGEINT")
    if indexed(table, dialect):
        columns.append(f"PRIMARY KEY ({', '.join(q(k) for k in table.key)})")
    return f"CREATE TABLE IF NOT EXISTS {q(name or table.name)} ({', '.join(columns)})"


def staging_name(table: Table) -> str:
    return f"plug_stage_{table.name}"


def create_staging(table: Table, dialect: Dialect) -> str:
    """A session-local staging table (PostgreSQL), emptied at every commit."""
    types = TYPES[dialect]
    columns = ", ".join(f"{q(c.name)} {types[STAGED.get(c.kind, c.kind)]}" for c in table.columns)
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {q(staging_name(table))} ({columns}) "
        "ON COMMIT DELETE ROWS"
    )


def convert(column: Column, dialect: Dialect) -> str:
    """A staged column (epoch ms, JSON text) as the table stores it."""
    name = q(column.name)
    if column.kind == "ts":
        in_range = f"{name} BETWEEN {_MIN_MS} AND {_MAX_MS}"
        if dialect == "duckdb":
            # epoch_ms gives a TIMESTAMP in UTC; the loader's session time zone is UTC
            return f"CASE WHEN {in_range} THEN epoch_ms({name})::TIMESTAMPTZ END"
        return f"CASE WHEN {in_range} THEN to_timestamp({name} / 1000.0) END"
    if column.kind == "json":
        return f"{name}::{TYPES[dialect]['json']}"
    return name


def insert_if_absent(table: Table, source: str, dialect: Dialect) -> str:
    """Rows of ``source`` that are not in ``table`` yet (by its key); the rest are dropped.
    ``source`` holds each key once (a batch drops redeliveries within itself).

    When ``takes_window``, the search for the batch's event ids reads only the table's rows
    received since the statement's one parameter, epoch milliseconds (``window_start``)."""
    names = [q(c.name) for c in table.columns]
    values = [convert(c, dialect) for c in table.columns]
    if id_number(table, dialect):
        names.append(q(ID_NUMBER))
        values.append(id_number_of(q("event_id")))
    insert = f"INSERT INTO {q(table.name)} ({', '.join(names)}) SELECT {', '.join(values)} FROM "
    if indexed(table, dialect):
        return insert + f"{source} ON CONFLICT DO NOTHING"
    if table.parent:
        return insert + source  # the caller passes only the children of events inserted now
    # DuckDB: a hash anti-join built on the batch, probing the key columns of the table
    on = " AND ".join(f"s.{q(k)} = t.{q(k)}" for k in table.key)
    present = q(table.name)
    if takes_window(table, dialect):
        # a parameter rather than a subquery on the batch: one plan step less per table and
        # batch (about 2-3 us per event of the writer's 25-35, measured)
        event_id, number = q("event_id"), q(ID_NUMBER)
        rest = [q(k) for k in table.key if k != "event_id"]  # message_status: its position
        present = (
            f"(SELECT {', '.join([number, *rest])} FROM {present} "
            f"WHERE {q('received_at')} >= epoch_ms(CAST(? AS BIGINT))::TIMESTAMPTZ)"
        )
        on = " AND ".join(
            [f"{id_number_of('s.' + event_id)} = t.{number}", *(f"s.{k} = t.{k}" for k in rest)]
        )
    return insert + f"(SELECT s.* FROM {source} AS s ANTI JOIN {present} AS t ON {on})"


def takes_window(table: Table, dialect: Dialect) -> bool:
    """Whether ``insert_if_absent``'s statement for ``table`` takes the window's start:
    DuckDB (no key index), an event table (``windowed``), not a child table."""
    return not indexed(table, dialect) and not table.parent and windowed(table)


def window_start(earliest_ms: int | None, window_ms: int) -> int:
    """Where the search for a batch's keys starts: ``window_ms`` before its earliest
    ``received_at`` (the table's beginning when it has none), within years 1..9999."""
    if earliest_ms is None:
        return _MIN_MS
    return min(max(earliest_ms - window_ms, _MIN_MS), _MAX_MS)


def windowed(table: Table) -> bool:
    """Whether DuckDB's search for a batch's keys can be bounded in time: an event table
    (keyed by ``event_id``, or by it and a position as ``message_status``, with the
    ingress's ``received_at``). Event ids are hashes, in no order, so the anti-join
    otherwise reads every id of the table for every batch (about 40 ms per million rows,
    measured): the loader would slow down as the table grows. Rows are appended in about
    ``received_at`` order, so DuckDB's per-row-group min/max of that column skips everything
    older than the window without reading it."""
    return table.key[0] == "event_id" and "received_at" in table.column_names
