"""``lake maintain``: compact small files, expire old snapshots, remove orphan files.

Every step commits like the loader does, based on the snapshot it read and with
pyiceberg's own retry off, so it is safe while loaders write: a compaction that loses its
commit to a loader's leaves the table as the loader made it and is tried again on the
next run (``Outcome.conflicts`` counts them). Nothing is read from the ledger's
``plug.offsets`` here: compaction rewrites data tables only, and expiry always keeps a
table's current snapshot, which holds the offsets.

- **Compact.** The loader commits a file per partition touched per batch: in an hour at
  a commit every few seconds, a day's partition holds hundreds of small files, and every
  scan opens them all (the loader's key reads included). A partition (day and tenant)
  with at least ``min_files`` files smaller than the table's target size is rewritten as
  one overwrite of that partition: its rows read and written again in as few files as
  the target size allows.
- **Expire.** Snapshots older than ``keep`` go from the metadata: time travel to them
  ends, and so do the rows only they held. An erased customer's original rows are gone
  from storage only once the snapshots before the erasure are expired and their files
  removed as orphans.
- **Orphans.** Files under a table's location that no snapshot, manifest or metadata
  file refers to any more (what expiry and compaction left, and a crashed writer's
  uncommitted files), older than ``orphan_age`` so a write in progress is never touched.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.lake.retention import KEEP, MIN_FILES, ORPHAN_AGE
from pipeline.lake.schema import BOOKKEEPING, LAKE_TABLES, LakeTable
from pipeline.lake.target import TABLE_PROPERTIES, unavailable

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table as IcebergTable

log = logging.getLogger(__name__)

_DAY_US = 86_400_000_000
_TARGET_BYTES = int(TABLE_PROPERTIES["write.target-file-size-bytes"])


@dataclass
class Outcome:
    """What a run did to one table."""

    table: str
    files_before: int = 0
    files_after: int = 0
    partitions_compacted: int = 0
    conflicts: int = 0  # commits lost to a writer's (compaction, expiry): the next run
    snapshots_expired: int = 0
    orphans_removed: int = 0
    orphan_bytes: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.table}: files {self.files_before} -> {self.files_after} "
            f"({self.partitions_compacted} partitions compacted, {self.conflicts} commits lost "
            f"to a writer), {self.snapshots_expired} snapshots expired, {self.orphans_removed} "
            f"orphan files removed ({self.orphan_bytes:,} bytes)"
        )


def maintain(
    catalog: SqlCatalog,
    namespace: str,
    *,
    compact: bool = True,
    expire: bool = True,
    orphans: bool = True,
    min_files: int = MIN_FILES,
    keep: dt.timedelta = KEEP,
    orphan_age: dt.timedelta = ORPHAN_AGE,
) -> list[Outcome]:
    outcomes = []
    for lt in (*LAKE_TABLES, *BOOKKEEPING):
        with unavailable(f"load {lt.name}"):
            table = catalog.load_table((namespace, lt.name))
        outcome = Outcome(lt.name, files_before=len(data_files(table)))
        # Expired first as well: pyiceberg copies a table's whole metadata, every snapshot
        # in it, for each commit, and compaction commits once per partition. After an
        # hour of 5 s batches (about 700 snapshots a table) compacting first took minutes
        # a table; then expired again, for the snapshots compaction has just replaced.
        if expire:
            outcome.snapshots_expired = expire_snapshots(table, keep, outcome)
        if compact:
            compact_table(table, lt, min_files, outcome)
        if expire:
            outcome.snapshots_expired += expire_snapshots(table, keep, outcome)
        if orphans:
            remove_orphans(table, orphan_age, outcome)
        table.refresh()
        outcome.files_after = len(data_files(table))
        outcomes.append(outcome)
    return outcomes


def data_files(table: IcebergTable) -> list[Any]:
    """The data files of the table's current snapshot."""
    if table.current_snapshot() is None:
        return []
    return [task.file for task in table.scan().plan_files()]


def compact_table(table: IcebergTable, lt: LakeTable, min_files: int, outcome: Outcome) -> None:
    """Rewrite each partition holding ``min_files`` small files or more."""
    from pyiceberg.exceptions import CommitFailedException

    by_partition: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for file in data_files(table):
        if file.file_size_in_bytes < _TARGET_BYTES:
            by_partition[tuple(file.partition)].append(file)
    for partition, files in sorted(by_partition.items(), key=repr):
        if len(files) < min_files or any(value is None for value in partition):
            continue  # a partition of null day or tenant is left as it is (rare)
        where = _partition_filter(lt, partition)
        table.refresh()
        snapshot = table.current_snapshot()
        if snapshot is None:
            return
        rows = table.scan(row_filter=where, snapshot_id=snapshot.snapshot_id).to_arrow()
        try:
            # on the snapshot read: a writer's commit since makes this one fail, unapplied
            with unavailable(f"compact {lt.name}"):
                table.overwrite(
                    rows, overwrite_filter=where, snapshot_properties={"plug.compacted": "1"}
                )
            outcome.partitions_compacted += 1
        except CommitFailedException:
            outcome.conflicts += 1


def _partition_filter(lt: LakeTable, partition: tuple[Any, ...]) -> BooleanExpression:
    """Rows of one partition: its day of the time column, its tenant."""
    from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, LessThan

    where: BooleanExpression = AlwaysTrue()
    values = list(partition)
    for spec_field in lt.spec.fields:
        value = values.pop(0)
        if spec_field.name == "day":
            assert lt.time_column is not None
            column = lt.time_column
            start = int(value) * _DAY_US
            where = And(
                where,
                And(
                    GreaterThanOrEqual(column, start),  # type: ignore[call-arg, arg-type]
                    LessThan(column, start + _DAY_US),  # type: ignore[call-arg, arg-type]
                ),
            )
        else:
            where = And(where, EqualTo(spec_field.name, value))  # type: ignore[call-arg, arg-type]
    return where


def expire_snapshots(table: IcebergTable, keep: dt.timedelta, outcome: Outcome) -> int:
    """Snapshots older than ``keep`` expired (never the current one); how many (0 when a
    writer committed first: the next run expires them)."""
    from pyiceberg.exceptions import CommitFailedException

    table.refresh()
    current = table.current_snapshot()
    cutoff_ms = int((time.time() - keep.total_seconds()) * 1000)
    old = [
        s.snapshot_id
        for s in table.snapshots()
        if s.timestamp_ms < cutoff_ms and (current is None or s.snapshot_id != current.snapshot_id)
    ]
    if not old:
        return 0
    try:
        with unavailable(f"expire snapshots of {table.name()}"):
            table.maintenance.expire_snapshots().by_ids(old).commit()
    except CommitFailedException:
        outcome.conflicts += 1
        return 0
    return len(old)


def referenced(table: IcebergTable) -> set[str]:
    """Every file the table's metadata refers to: metadata files, manifest lists,
    manifests and data files of every snapshot it keeps."""
    io = table.io
    metadata = table.metadata
    found = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    for snapshot in metadata.snapshots:
        found.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            found.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                found.add(entry.data_file.file_path)
    for statistics in metadata.statistics:
        found.add(statistics.statistics_path)
    return {_path(f) for f in found}


def remove_orphans(table: IcebergTable, orphan_age: dt.timedelta, outcome: Outcome) -> None:
    """Delete files under the table's location that nothing refers to, older than
    ``orphan_age``."""
    from pyarrow import fs

    table.refresh()
    filesystem, root = fs.FileSystem.from_uri(table.location())
    keep = referenced(table)
    cutoff = time.time() - orphan_age.total_seconds()
    try:
        infos = filesystem.get_file_info(fs.FileSelector(root, recursive=True))
    except FileNotFoundError:
        return
    for info in infos:
        if info.type != fs.FileType.File or _path(info.path) in keep:
            continue
        if info.mtime is None or info.mtime.timestamp() > cutoff:
            continue  # perhaps a commit in progress
        filesystem.delete_file(info.path)
        outcome.orphans_removed += 1
        outcome.orphan_bytes += info.size or 0


def _path(location: str) -> str:
    """A file's location without its scheme: ``file:///a/b`` and ``/a/b`` are one file."""
    scheme, sep, rest = location.partition("://")
    if not sep:
        return location
    return "/" + rest.lstrip("/") if scheme == "file" else rest
