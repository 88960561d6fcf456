"""The target seam: what the loader asks of a warehouse, and which target an address opens.

A target writes one batch's rows and moves its partitions' offsets in one transaction
(``offsets.py``: a stale loader raises ``StaleOffsets`` and writes nothing).
``open_target`` picks the target from the address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar, runtime_checkable

from pipeline.privacy.subject import Pseudonyms
from pipeline.warehouse.address import kind_of
from pipeline.warehouse.batch import TP, Batch
from pipeline.warehouse.personal import Erased
from pipeline.warehouse.sql import Session
from pipeline.warehouse.views import ViewSettings

T = TypeVar("T")


class Target(Protocol):
    @property
    def dialect(self) -> str:
        """``duckdb``, ``postgresql`` or ``iceberg``."""
        ...

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

    def erased(self) -> list[Erased]:
        """Every erasure request the warehouse has applied (``plug_erasure``)."""
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

    def check_chains(self, pseudonyms: Pseudonyms) -> list[str]:
        """Each keyed tenant's pseudonym key chain recorded if new, a ConfigError if one
        differs from the recorded one (``chain.py``); the tenants recorded now."""
        ...

    def ping(self) -> None:
        """A round trip to the warehouse; ``WarehouseUnavailable`` when it does not answer
        within the connection's timeouts."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SqlTarget(Target, Protocol):
    """A warehouse that runs SQL in transactions of its own: DuckDB and PostgreSQL."""

    def transact(self, work: Callable[[Session], T]) -> T:
        """``work`` in one transaction of its own (``rekey``)."""
        ...


def open_target(
    where: str,
    view_settings: ViewSettings | None = None,
    dedup_hours: float | None = None,
    duckdb_memory_mb: int | None = None,
) -> Target:
    """A ``postgresql://`` (or ``postgres://``) URL, an ``iceberg+...`` catalog
    (``pipeline/lake``) or a DuckDB file path (``address.py``: an unknown scheme raises
    ``ConfigError``); KPI views are created with ``view_settings`` (the defaults when None;
    the lake has none, ``lake/read.py`` makes them where it is read). ``dedup_hours``: the
    window for redeliveries of DuckDB and the lake (their default when None; PostgreSQL
    drops a redelivery of any age);
    ``duckdb_memory_mb``: DuckDB's memory limit (its default when None)."""
    kind = kind_of(where)
    if kind == "postgresql":
        from pipeline.warehouse.postgres import PostgresTarget

        return PostgresTarget(where, view_settings)
    if kind == "iceberg":
        from pipeline.lake.target import DEDUP_HOURS as LAKE_DEDUP_HOURS
        from pipeline.lake.target import IcebergTarget

        return IcebergTarget(where, LAKE_DEDUP_HOURS if dedup_hours is None else dedup_hours)
    from pipeline.warehouse.duckdb import DEDUP_HOURS, MEMORY_MB, DuckDBTarget

    return DuckDBTarget(
        where,
        view_settings,
        DEDUP_HOURS if dedup_hours is None else dedup_hours,
        MEMORY_MB if duckdb_memory_mb is None else duckdb_memory_mb,
    )
