"""The lake as the loader's target: a batch's rows table by table, then its offsets.

Each table's rows commit in one Iceberg commit, made idempotent: first the rows whose
key the table already holds are dropped, as DuckDB's insert-if-absent does (event tables
by ``event_id`` within ``dedup_hours`` of the batch's earliest event, a child table's
rows only with a new parent, dead letters, raw bodies and load errors by their topic,
partition and offset). The commit is based on the snapshot the keys were read from, and
pyiceberg's own retry (which would re-apply the same rows on a newer snapshot) is off
(``commit.retry.num-retries`` 0): when another writer committed first, the keys are read
again and the rows filtered again. Then the offsets commit (``ledger.py``): a batch whose
offsets did not land is read again and finds its rows, so every row is there once
whatever stopped the loader and wherever. docs/lakehouse.md says why and what it costs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import WarehouseUnavailable
from pipeline.lake import erase, ledger
from pipeline.lake.catalog import LakeAddress, open_catalog, parse
from pipeline.lake.schema import (
    BOOKKEEPING,
    BY_TABLE,
    ERASURES,
    LAKE_TABLES,
    OFFSETS,
    LakeTable,
    to_lake,
)
from pipeline.privacy.subject import Pseudonyms
from pipeline.warehouse import chain
from pipeline.warehouse.arrow import arrow_table
from pipeline.warehouse.batch import TP, Batch
from pipeline.warehouse.personal import Erased
from pipeline.warehouse.sql import window_start, windowed
from pipeline.warehouse.tables import Table

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table as IcebergTable

log = logging.getLogger(__name__)

DEDUP_HOURS = 24.0  # as DuckDB's: see warehouse/duckdb.py
# A commit lost to another writer is retried at once with the keys read again; after this
# many in a row the batch waits as for an unavailable warehouse.
ATTEMPTS = 20
BATCH_PROPERTY = "plug.batch"  # each data snapshot: the group and offsets it came from
TABLE_PROPERTIES = {
    # conflicts come back to the target, which reads the keys again (see the docstring)
    "commit.retry.num-retries": "0",
    "write.parquet.compression-codec": "zstd",
    # Each append adds a manifest, and every scan (the key reads of each batch) opens them
    # all: merged once there are 100 (Iceberg's default count), they stay about that many.
    "commit.manifest-merge.enabled": "true",
    # the files a lake maintain leaves: merged to about this size
    "write.target-file-size-bytes": str(128 * 1024 * 1024),
}

# Each tenant's pseudonym key chain, recorded on plug_offsets (see check_chains).
CHAIN_PROPERTY = "plug.key-chain"


class IcebergTarget:
    dialect = "iceberg"
    # rows wait in memory as Arrow until their table's commit: batches keep their size
    catch_up_factor = 1

    def __init__(self, address: str, dedup_hours: float = DEDUP_HOURS) -> None:
        self.address: LakeAddress = parse(address)
        self._window_ms = round(dedup_hours * 3_600_000)
        self._catalog: SqlCatalog | None = None
        self._tables: dict[str, IcebergTable] = {}

    def describe(self) -> str:
        return self.address.describe()

    # -- the catalog ---------------------------------------------------------------------
    def _open(self) -> SqlCatalog:
        if self._catalog is None:
            with unavailable("open the catalog"):
                self._catalog = open_catalog(self.address)
        return self._catalog

    def table(self, name: str) -> IcebergTable:
        """A table as of its latest commit."""
        found = self._tables.get(name)
        if found is None:
            with unavailable(f"load {name}"):
                found = self._open().load_table(self.address.identifier(name))
            self._tables[name] = found
        else:
            with unavailable(f"refresh {name}"):
                found.refresh()
        return found

    def migrate(self) -> list[int]:
        """The namespace and every table, created where absent; [1] when any was."""
        catalog = self._open()
        created = False
        with unavailable("create the tables"):
            catalog.create_namespace_if_not_exists(self.address.namespace)
            existing = {name for _, name in catalog.list_tables(self.address.namespace)}
            for lt in (*LAKE_TABLES, *BOOKKEEPING):
                if lt.name in existing:
                    continue
                catalog.create_table_if_not_exists(
                    self.address.identifier(lt.name),
                    schema=lt.schema,
                    partition_spec=lt.spec,
                    properties=TABLE_PROPERTIES,
                )
                created = True
        return [1] if created else []

    def offsets(self, group: str) -> dict[TP, int]:
        return ledger.read(self.table(OFFSETS.name)).get(group, {})

    def erased(self) -> list[Erased]:
        with unavailable("read the erasures"):
            return erase.erased(self.table(ERASURES.name))

    # -- a batch -------------------------------------------------------------------------
    def ping(self) -> None:
        """A round trip to the catalog's database (the files are read only to write)."""
        with unavailable("reach the catalog"):
            self._open().list_namespaces()

    def check_chains(self, pseudonyms: Pseudonyms) -> list[str]:
        """As ``chain.check`` does in SQL, in the table properties of ``plug_offsets``
        (``plug.key-chain.<tenant>``: how many keys, and the chain's fingerprint)."""
        offsets = self.table(OFFSETS.name)
        recorded: dict[str, str] = {}
        for tenant in pseudonyms.tenants():
            name = f"{CHAIN_PROPERTY}.{tenant}"
            keys = len(pseudonyms.chain(tenant))
            value = f"{keys}:{pseudonyms.fingerprint(tenant)}"
            found = offsets.properties.get(name)
            if found is None:
                recorded[name] = value
            elif found != value:
                raise chain.changed_chain(tenant, int(found.split(":", 1)[0]), rekey=False)
        if recorded:
            with unavailable("record the key chains"), offsets.transaction() as tx:
                tx.set_properties(recorded)
        return [name.removeprefix(f"{CHAIN_PROPERTY}.") for name in recorded]

    def prepare(self, batch: Batch) -> None:
        if not batch.staged:
            batch.stage(
                {
                    table: to_lake(table, arrow_table(table, rows))
                    for table, rows in batch.rows.items()
                }
            )

    def write(self, group: str, batch: Batch, expected: Mapping[TP, int | None]) -> None:
        self.prepare(batch)
        offsets_table = self.table(OFFSETS.name)
        if batch.offsets:  # a stale loader stops here, before writing anything
            ledger.check(group, ledger.read(offsets_table).get(group, {}), batch.offsets, expected)
        summary = {BATCH_PROPERTY: _batch_summary(group, batch.offsets)}
        inserted: dict[str, pa.Array] = {}  # parent table -> event ids new in it
        children = []
        # Each child table's snapshot before this batch's parents commit: if it is still
        # the table's when their children are written, no other writer can have written
        # children of those parents (see _append_new).
        seen = {
            table.name: _snapshot_id(self.table(table.name))
            for table in batch.staged
            if table.parent
        }
        for table, staged in batch.staged.items():
            if table.parent:
                children.append((table, staged))
                continue
            fresh = self._append_absent(BY_TABLE[table], staged, summary)
            if fresh is not None and "event_id" in table.column_names:
                inserted[table.name] = fresh.column("event_id")
        for table, staged in children:
            self._children(BY_TABLE[table], staged, inserted, summary, seen[table.name])
        for erasure in batch.erasures:  # after the rows: this batch's are found too
            with unavailable("apply an erasure"):
                erase.apply(self.table, erasure)
        if batch.offsets:
            with unavailable("commit the offsets"):
                ledger.commit(offsets_table, group, batch.offsets, expected)

    def _children(
        self,
        lt: LakeTable,
        staged: pa.Table,
        inserted: dict[str, pa.ChunkedArray],
        summary: dict[str, str],
        seen: int | None,
    ) -> None:
        """A child table's rows: those of parents new in this batch as they are unless
        another writer committed to the table since ``seen`` (_append_new), and those of
        parents the table held already only where the child table lacks them. A loader
        stopped between a parent's commit and its children's leaves such parents; a
        redelivery of an event already loaded is another, and its children are found and
        dropped."""
        new = [inserted[p] for p in lt.table.parent if p in inserted]
        chunks = [c for ids in new for c in ids.chunks]
        new_ids = pa.chunked_array(chunks, pa.string()).combine_chunks()
        is_new = pc.is_in(staged.column("event_id"), new_ids)
        of_new = staged.filter(is_new)
        if of_new.num_rows:
            self._append_new(lt, of_new, summary, seen)
        of_old = staged.filter(pc.invert(is_new))
        if of_old.num_rows:
            self._append_absent(lt, of_old, summary)

    def _append_absent(
        self, lt: LakeTable, staged: pa.Table, summary: dict[str, str]
    ) -> pa.Table | None:
        """The rows of ``staged`` whose key the table lacks, appended; those rows (None
        when there were none)."""
        from pyiceberg.exceptions import CommitFailedException

        for attempt in range(ATTEMPTS):
            iceberg = self.table(lt.name)
            fresh = self._absent(iceberg, lt, staged)
            if not fresh.num_rows:
                return None
            try:
                with unavailable(f"append to {lt.name}"):
                    iceberg.append(fresh, snapshot_properties=summary)
                return fresh
            except CommitFailedException:
                ledger.back_off(attempt)  # another writer committed first: read its keys too
        raise WarehouseUnavailable(f"{lt.name}: {ATTEMPTS} commits in a row lost to others")

    def _append_new(
        self, lt: LakeTable, rows: pa.Table, summary: dict[str, str], seen: int | None
    ) -> None:
        """Children of parents this batch committed. Another writer (a zombie loader, one
        racing through a rebalance) may have found those parents committed and written
        their children where missing, but only by committing to this table after ``seen``:
        while the table is still at ``seen`` they are appended as they are (an append
        asserts the snapshot it was based on, so a commit landing meanwhile fails it);
        otherwise only the rows the table lacks are."""
        from pyiceberg.exceptions import CommitFailedException

        iceberg = self.table(lt.name)
        if _snapshot_id(iceberg) == seen:
            try:
                with unavailable(f"append to {lt.name}"):
                    iceberg.append(rows, snapshot_properties=summary)
                return
            except CommitFailedException:
                pass  # another writer committed first: check its rows
        self._append_absent(lt, rows, summary)

    def _absent(self, iceberg: IcebergTable, lt: LakeTable, staged: pa.Table) -> pa.Table:
        """The rows of ``staged`` whose key is not in the table's current snapshot."""
        if iceberg.current_snapshot() is None:
            return staged
        table = lt.table
        # an event's rows (and its children) are committed together: its id is enough
        by_event = windowed(table) or bool(table.parent)
        key = list(table.key[:1]) if by_event else list(table.key)
        with unavailable(f"read the keys of {lt.name}"):
            found = iceberg.scan(
                row_filter=self._key_filter(table, staged, key), selected_fields=tuple(key)
            ).to_arrow()
        if not found.num_rows:
            return staged
        if len(key) == 1:
            mask = pc.invert(pc.is_in(staged.column(key[0]), found.column(key[0])))
        else:
            held = set(zip(*(found.column(k).to_pylist() for k in key), strict=True))
            rows = zip(*(staged.column(k).to_pylist() for k in key), strict=True)
            mask = pa.array([row not in held for row in rows], pa.bool_())
        return staged.filter(mask)

    def _key_filter(self, table: Table, staged: pa.Table, key: list[str]) -> BooleanExpression:
        """The batch's keys (and, for an event table, the window before its earliest
        event: the day partitions before it and the files whose times end before it are
        not read)."""
        from pyiceberg.expressions import And

        expression = _in(key[0], _values(staged.column(key[0])))
        for column in key[1:]:
            expression = And(expression, _in(column, _values(staged.column(column))))
        tenants = staged.column("tenant") if "tenant" in table.column_names else None
        if tenants is not None and not tenants.null_count:  # those tenants' partitions only
            expression = And(expression, _in("tenant", _values(tenants)))
        if windowed(table):
            earliest = pc.min(staged.column("received_at")).cast(pa.int64()).as_py()
            earliest_ms = earliest // 1000 if earliest is not None else None
            start_us = window_start(earliest_ms, self._window_ms) * 1000
            expression = And(expression, _at_least("received_at", start_us))
        return expression

    def close(self) -> None:
        self._tables.clear()
        if self._catalog is not None:
            self._catalog.engine.dispose()
            self._catalog = None


# pyiceberg's expressions are pydantic models made by __new__, which mypy does not see
def _snapshot_id(iceberg: IcebergTable) -> int | None:
    snapshot = iceberg.current_snapshot()
    return None if snapshot is None else snapshot.snapshot_id


def _in(column: str, values: set[Any]) -> BooleanExpression:
    from pyiceberg.expressions import In

    return In(column, values)  # type: ignore[call-arg, arg-type]


def _at_least(column: str, value: int) -> BooleanExpression:
    from pyiceberg.expressions import GreaterThanOrEqual

    return GreaterThanOrEqual(column, value)  # type: ignore[call-arg, arg-type]


def _values(column: pa.ChunkedArray) -> set[Any]:
    return {v for v in pc.unique(column).to_pylist() if v is not None}


def _batch_summary(group: str, offsets: Mapping[TP, int]) -> str:
    listed = sorted((topic, p, n) for (topic, p), n in offsets.items())
    return msgspec.json.encode({"group": group, "offsets": listed}).decode()


@contextmanager
def unavailable(what: str) -> Iterator[None]:
    """The catalog's database or the file store failing is a wait (``WarehouseUnavailable``,
    the loader retries), not the end of the load."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise WarehouseUnavailable(f"{what}: the catalog is unavailable ({exc.orig!r})") from exc
    except OSError as exc:
        raise WarehouseUnavailable(f"{what}: {exc}") from exc
