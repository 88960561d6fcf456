"""The loader's offsets in the lake: the snapshot summary of ``plug_offsets``.

Iceberg commits one table at a time, and pyiceberg 0.12's SQL catalog has no commit
across tables. So a batch is written table by table, each commit idempotent (rows whose
key the table holds are dropped first, ``target.py``), and its offsets commit last, here:
the batch is loaded when this commit lands. A crash in between leaves rows without
offsets; the next loader reads the batch again and finds its rows there.

Each commit replaces the table's rows with every group's offsets (one row per partition,
as in DuckDB and PostgreSQL, readable by any engine) and writes the same as JSON in the
snapshot's summary (``plug.offsets``), which the loader reads: no data file is opened to
know where to start. The commit is based on the snapshot it checked: if another loader
committed meanwhile, it fails, and is checked again against the new offsets. A loader
that expected an offset the table no longer holds raises ``StaleOffsets``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec
import pyarrow as pa

from pipeline.errors import StaleOffsets, WarehouseUnavailable
from pipeline.warehouse.batch import TP

if TYPE_CHECKING:
    from pyiceberg.table import Table as IcebergTable

PROPERTY = "plug.offsets"
# Commits lost to other loaders in a row before the loader backs off and retries the
# batch (WarehouseUnavailable): each attempt reads and checks the offsets again.
ATTEMPTS = 20

Offsets = dict[str, dict[TP, int]]  # group -> (topic, partition) -> next offset
_Stored = dict[str, list[tuple[str, int, int]]]


def read(table: IcebergTable) -> Offsets:
    """Every group's offsets as of the table's current snapshot."""
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot is not None else None
    text = summary[PROPERTY] if summary is not None else None
    if not text:
        return {}
    stored = msgspec.json.decode(text, type=_Stored)
    return {g: {(topic, p): n for topic, p, n in rows} for g, rows in stored.items()}


def check(
    group: str, held: Mapping[TP, int], offsets: Mapping[TP, int], expected: Mapping[TP, int | None]
) -> None:
    """``StaleOffsets`` unless every partition of ``offsets`` is where ``expected`` says."""
    wrong = [(tp, expected.get(tp)) for tp in offsets if held.get(tp) != expected.get(tp)]
    if wrong:
        said = ", ".join(f"{topic}[{p}] at {old}" for (topic, p), old in wrong)
        raise StaleOffsets(
            f"the lake no longer holds the offsets expected for group {group!r} "
            f"({'one of ' if len(wrong) > 1 else ''}{said}); another loader moved it on"
        )


def commit(
    table: IcebergTable,
    group: str,
    offsets: Mapping[TP, int],
    expected: Mapping[TP, int | None],
) -> None:
    """Move ``group``'s partitions from ``expected`` to ``offsets`` in one commit."""
    from pyiceberg.exceptions import CommitFailedException

    for attempt in range(ATTEMPTS):
        table.refresh()
        every = read(table)
        held = every.get(group, {})
        check(group, held, offsets, expected)
        every[group] = {**held, **offsets}
        rows, summary = _rows(every), {PROPERTY: _encode(every)}
        try:
            if table.current_snapshot() is None:  # nothing to replace yet
                table.append(rows, snapshot_properties=summary)
            else:
                table.overwrite(rows, snapshot_properties=summary)
            return
        except CommitFailedException:
            back_off(attempt)  # another loader's commit: check again
    raise WarehouseUnavailable(f"offsets not committed after {ATTEMPTS} conflicting attempts")


def back_off(attempt: int) -> None:
    """Wait before the next attempt at a commit lost to another writer: a random part of a
    doubling bound, so writers that keep meeting on one table (loaders of one group,
    ``lake maintain``) fall out of step instead of losing to each other in turn."""
    time.sleep(random.uniform(0, min(0.02 * 2**attempt, 1.0)))


def _encode(every: Offsets) -> str:
    stored = {g: sorted((topic, p, n) for (topic, p), n in tps.items()) for g, tps in every.items()}
    return msgspec.json.encode(stored).decode()


def _rows(every: Offsets) -> pa.Table:
    """One row per group and partition, the columns of DuckDB's ``plug_offsets``."""
    now = pa.scalar(int(time.time() * 1_000_000), pa.timestamp("us", tz="UTC"))
    rows = [(g, topic, p, n) for g, tps in every.items() for (topic, p), n in sorted(tps.items())]
    groups, topics, partitions, nexts = (
        (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [])
    )
    return pa.table(
        {
            "group_name": pa.array(groups, pa.string()),
            "topic": pa.array(topics, pa.string()),
            "partition": pa.array(partitions, pa.int32()),
            "next_offset": pa.array(nexts, pa.int64()),
            "updated_at": pa.array([now.value] * len(rows), now.type),
        }
    )
