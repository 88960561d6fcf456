"""The embedded target: a DuckDB file, no server.

Each table's rows are handed to DuckDB as one Arrow table (columnar, no per-row SQL)
and inserted if absent from there, all in one transaction with the offsets. DuckDB lets
one process write a file at a time, so one loader per file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import WarehouseError, WarehouseUnavailable
from pipeline.privacy.subject import Pseudonyms
from pipeline.warehouse import chain, erase, migrations
from pipeline.warehouse.arrow import arrow_table
from pipeline.warehouse.batch import TP, Batch
from pipeline.warehouse.offsets import OFFSETS_QUERY, move_offsets
from pipeline.warehouse.personal import Erased
from pipeline.warehouse.sql import (
    Dialect,
    Session,
    insert_if_absent,
    takes_window,
    window_start,
)
from pipeline.warehouse.tables import BY_NAME, LOADED_TABLES, Table
from pipeline.warehouse.views import ViewSettings

T = TypeVar("T")

_STAGING = "plug_staging"  # also the name of the variable DuckDBTarget._insert sets
MEMORY_MB = 40  # DuckDB's memory_limit: see DuckDBTarget.__init__
CHECKPOINT_THRESHOLD = "64MB"
# While the loader is behind (Batch.behind), a checkpoint every 256 MB of WAL:
# per event about a third less checkpoint work (a 200,000 record replay went from 15-17,000
# to 19-20,000 events/s), for a stall of about 2 s per checkpoint instead of 1 (half that
# since the JSON columns are zstd, sql.create_table), which only matters to freshness
# once the loader has caught up (then the next commit checkpoints what piled up).
CATCH_UP_CHECKPOINT_THRESHOLD = "256MB"
# How long after an event's first delivery a redelivery of it (same event_id) is still
# dropped: the search for a batch's ids goes back this far in received_at (sql.windowed).
# PostgreSQL's key is a constraint and drops a redelivery of any age.
DEDUP_HOURS = 24.0
PARENTS = {BY_NAME[name] for t in LOADED_TABLES for name in t.parent}


class DuckDBTarget:
    dialect: Dialect = "duckdb"
    # a transaction's rows stay in DuckDB's memory until the commit: batches keep their size
    catch_up_factor = 1

    def __init__(
        self,
        path: str,
        view_settings: ViewSettings | None = None,
        dedup_hours: float = DEDUP_HOURS,
        memory_mb: int = MEMORY_MB,
    ) -> None:
        self.path = path
        self.view_settings = view_settings
        try:
            if Path(path).parent != Path():
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(path)
        except (duckdb.Error, OSError) as exc:
            # most often another process holds the file
            raise WarehouseUnavailable(f"cannot open {path}: {exc}") from exc
        # epoch_ms(...)::TIMESTAMPTZ reads the time as UTC only in a UTC session
        self._con.execute("SET TimeZone = 'UTC'")
        # A checkpoint compresses what the WAL holds and merges the small row groups earlier
        # checkpoints wrote, so its cost is mostly per checkpoint: at DuckDB's 16 MB it was
        # half the write time; at 64 MB a quarter. Rows not yet checkpointed live in the
        # buffer pool, which spills to a temporary file above memory_limit, so RSS does not
        # grow with it; a larger threshold saves a little more but each checkpoint stalls
        # the writer longer (at 256 MB for seconds: freshness).
        self._threshold = CHECKPOINT_THRESHOLD
        self._con.execute(f"SET checkpoint_threshold = '{self._threshold}'")
        # DuckDB's cache would otherwise grow to most of the machine's memory. No key index
        # lives in it (sql.indexed), so it holds only the blocks being read and written; but
        # a transaction's rows stay in it until the commit, so Limits.bytes (8 MiB) bounds a
        # batch well within this (batches of 20,000 rows, 13 MiB of records, were refused
        # Out of Memory at 32 MB and at 64 MB during replays; none of 8 MiB was). The rest
        # is the rows not yet checkpointed, spilled to a temporary file when it is full.
        # 40 MB spills less than 32 and fits the peak RSS target since large blocks are
        # unmapped when freed (allocator.map_large_blocks): replays peaked at 240-243 MB; 48 was
        # no faster within the runs' noise and peaked at 242-257, 64 at 258-267
        # (`load --duckdb-memory-mb`; bench/RESULTS.md).
        self._con.execute(f"SET memory_limit = '{memory_mb}MB'")
        # One thread: the loader's queries are small inserts, a second DuckDB thread only
        # takes CPU from the decoding thread and the broker on the same cores (about 8 % of
        # the CPU per event, measured), and each thread has its own allocation caches.
        self._con.execute("SET threads = 1")
        # DuckDB's allocator keeps up to 128 MB of freed memory for reuse by default.
        self._con.execute("SET allocator_flush_threshold = '16MB'")
        self._window_ms = round(dedup_hours * 3_600_000)
        self._inserts = {t: insert_if_absent(t, _STAGING, "duckdb") for t in LOADED_TABLES}

    def describe(self) -> str:
        return f"duckdb:{self.path}"

    # sql.Session: migrations and offset moves run on the connection itself
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._con.execute(sql, list(params) if params else None)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._con.execute(sql, list(params) if params else None).fetchall()

    def changed(self, sql: str, params: Sequence[Any]) -> int:
        row = self._con.execute(sql, list(params)).fetchone()
        return int(row[0]) if row else 0

    def migrate(self) -> list[int]:
        applied: list[int] = self._in_transaction(
            lambda: migrations.apply(self, self.view_settings)
        )
        return applied

    def offsets(self, group: str) -> dict[TP, int]:
        rows = self.query(OFFSETS_QUERY, (group,))
        return {(topic, partition): offset for topic, partition, offset in rows}

    def erased(self) -> list[Erased]:
        return erase.erased(self.query(erase.erased_query(self.dialect)))

    def prepare(self, batch: Batch) -> None:
        """The batch's rows as Arrow tables (building them is Python work, under the GIL)."""
        if not batch.staged:
            batch.stage({table: arrow_table(table, rows) for table, rows in batch.rows.items()})

    def write(self, group: str, batch: Batch, expected: Mapping[TP, int | None]) -> None:
        self.prepare(batch)
        threshold = CATCH_UP_CHECKPOINT_THRESHOLD if batch.behind else CHECKPOINT_THRESHOLD
        if threshold != self._threshold:
            self._con.execute(f"SET checkpoint_threshold = '{threshold}'")
            self._threshold = threshold

        def body() -> None:
            inserted: dict[str, list[str]] = {}  # parent table -> event ids new in it
            children = []
            for table, staged in batch.staged.items():
                if table.parent:
                    children.append((table, staged))
                elif table in PARENTS:
                    found = self._insert(
                        table, staged, self._inserts[table] + " RETURNING event_id"
                    )
                    inserted[table.name] = [eid for (eid,) in found]
                else:
                    self._insert(table, staged, self._inserts[table])
            for table, staged in children:
                # only the children of events that are new: the others are there already
                new = [eid for p in table.parent for eid in inserted.get(p, ())]
                fresh = staged.filter(
                    pc.is_in(staged.column("event_id"), pa.array(new, pa.string()))
                )
                if fresh.num_rows:
                    self._insert(table, fresh, self._inserts[table])
            erase.apply_all(self, batch.erasures)  # after the rows: this batch's are found too
            move_offsets(self, group, batch.offsets, expected)

        self._in_transaction(body)

    def _insert(self, table: Table, staged: pa.Table, sql: str) -> list[tuple[Any, ...]]:
        params = []
        if takes_window(table, "duckdb"):
            earliest = pc.min(staged.column("received_at")).as_py()
            params.append(window_start(earliest, self._window_ms))
        # DuckDB reads an Arrow table named in a query from the Python variable of that
        # name (its replacement scan), no catalog entry made: registering and unregistering
        # the table instead took 1.2 ms per statement, nine statements a batch.
        plug_staging = staged  # noqa: F841 (read by DuckDB, by name)
        found: list[tuple[Any, ...]] = self._con.execute(sql, params or None).fetchall()
        return found

    def _in_transaction(self, body: Any) -> Any:
        self._con.begin()
        try:
            result = body()
        except duckdb.Error as exc:
            self._con.rollback()
            raise WarehouseError(f"DuckDB refused the batch: {exc}") from exc
        except BaseException:
            self._con.rollback()
            raise
        try:
            self._con.commit()
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB refused the commit: {exc}") from exc
        return result

    def check_chains(self, pseudonyms: Pseudonyms) -> list[str]:
        return self.transact(lambda session: chain.check(session, pseudonyms))

    def ping(self) -> None:
        """Nothing: an embedded file has no connection to lose."""

    def transact(self, work: Callable[[Session], T]) -> T:
        result: T = self._in_transaction(lambda: work(self))
        return result

    def close(self) -> None:
        self._con.close()
