"""``lake maintain`` on a SQLite catalog and local files: fewer files, the same rows,
snapshots expired and orphans removed, and safe while a writer commits."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from pipeline.lake.maintain import data_files, maintain
from pipeline.lake.target import IcebergTarget
from pipeline.record import Record
from pipeline.warehouse.duckdb import DuckDBTarget
from pipeline.warehouse.views import VIEW_NAMES
from tests.support import cli
from tests.support.lake import duckdb_tables, lake_address, lake_tables
from tests.support.warehouse import write_records
from tests.unit.test_lake import event_type_or_none, traffic

NOW = dt.timedelta(0)


def events() -> list[Record]:
    # events only: write_records numbers a dead letter's offset by its place in a call
    return [r for r in traffic() if event_type_or_none(r) is not None]


def write_in_small_batches(target: IcebergTarget, records: list[Record], size: int) -> None:
    for i in range(0, len(records), size):
        write_records(target, records[i : i + size])


def test_maintain_compacts_expires_and_removes_orphans_keeping_every_row(
    tmp_path: Path,
) -> None:
    address = lake_address(tmp_path)
    lake = IcebergTarget(address)
    lake.migrate()
    records = events()[:160]
    write_in_small_batches(lake, records, 20)
    before = lake_tables(address)
    files_before = len(data_files(lake.table("message_received")))
    lake_dir = tmp_path / "lake" / "files"
    on_disk_before = sum(1 for p in lake_dir.rglob("*") if p.is_file())

    outcomes = {o.table: o for o in maintain(lake._open(), "plug", keep=NOW, orphan_age=NOW)}

    received = outcomes["message_received"]
    assert received.files_before == files_before
    assert received.partitions_compacted >= 1
    assert received.files_after < files_before
    assert received.snapshots_expired > 0
    assert received.orphans_removed > 0
    assert len(lake.table("message_received").snapshots()) == 1
    assert sum(1 for p in lake_dir.rglob("*") if p.is_file()) < on_disk_before
    assert lake_tables(address) == before  # every row kept, none added
    write_records(lake, records)  # the keys still drop what is there after compaction
    assert lake_tables(address) == before


def test_maintain_while_a_writer_commits_loses_no_row_and_adds_none(tmp_path: Path) -> None:
    address = lake_address(tmp_path)
    writer = IcebergTarget(address)
    writer.migrate()
    records = events()[:150]
    write_in_small_batches(writer, records[:60], 15)
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            write_in_small_batches(writer, records, 15)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    runs = compacted = 0
    maintainer = IcebergTarget(address)
    while not done.is_set() or runs == 0:
        # orphans at their real age: the writer's files not yet committed are young
        outcomes = maintain(maintainer._open(), "plug", min_files=2, keep=NOW)
        compacted += sum(o.partitions_compacted for o in outcomes)
        runs += 1
    thread.join()
    assert errors == []
    assert compacted > 0  # maintenance did rewrite files while the writer committed
    duck = DuckDBTarget(str(tmp_path / "w.duckdb"))
    duck.migrate()
    for i in range(0, 60, 15):
        write_records(duck, records[i : i + 15])
    for i in range(0, len(records), 15):
        write_records(duck, records[i : i + 15])
    duck.close()
    assert lake_tables(address) == duckdb_tables(str(tmp_path / "w.duckdb"))


def test_the_commands_maintain_a_lake_print_its_views_and_refuse_a_duckdb_file(
    tmp_path: Path,
) -> None:
    address = lake_address(tmp_path)
    lake = IcebergTarget(address)
    lake.migrate()
    write_in_small_batches(lake, events()[:80], 10)
    maintained = cli.run("lake", "maintain", "--at", address, "--keep-hours", "0")
    assert maintained.returncode == 0, maintained.stderr
    lines = {line.split(":")[0]: line for line in maintained.stdout.splitlines()}
    assert "partitions compacted" in lines["message_received"]
    assert len(data_files(lake.table("message_received"))) < 8
    views = cli.run("lake", "views")
    assert views.returncode == 0, views.stderr
    assert views.stdout.count("CREATE OR REPLACE TEMPORARY VIEW") == len(VIEW_NAMES)
    refused = cli.run("lake", "maintain", "--at", str(tmp_path / "w.duckdb"))
    assert refused.returncode == 2
    assert "iceberg+" in refused.stderr
