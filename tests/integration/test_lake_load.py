"""``plug-pipeline load --to iceberg+...`` on the real broker: the same rows as DuckDB
table by table, exactly once through kill -9 at random points, two loaders in one group
on a PostgreSQL catalog, that catalog stopped mid-load, and an erasure request. Read
back by the tests' own client (DuckDB over pyiceberg's scans), never by the loader."""

from __future__ import annotations

import random
import re
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from pipeline.privacy import erasure
from pipeline.privacy.subject import Pseudonyms
from tests.integration import test_erasure as erasure_test
from tests.integration.test_warehouse_faults import (
    PG_SCRIPT,
    assigned,
    loaded_count,
    many_records,
    own_postgres,
)
from tests.integration.test_warehouse_load import own_ingress, topics
from tests.support import cli, kafka
from tests.support import kpi_fixtures as fx
from tests.support import loader as wh
from tests.support.lake import duckdb_tables, duckdb_views, lake_address, lake_tables, lake_views

__all__ = ["own_ingress", "own_postgres", "topics"]  # fixtures shared with the warehouse's tests

pytestmark = pytest.mark.timeout(400)


def pg_lake(database_url: str, tmp: Path) -> str:
    """A lake whose catalog is a PostgreSQL database, its files in a local folder."""
    return f"iceberg+{database_url}?warehouse={(tmp / 'lake-files').as_uri()}"


def test_the_lake_holds_the_same_rows_as_duckdb_table_by_table(
    topics: tuple[str, list[kafka.Record]], tmp_path: Path
) -> None:
    """Simulated traffic, the corpus, redeliveries, dead letters and undecodable records."""
    prefix, _ = topics
    lake, duck = lake_address(tmp_path), wh.duckdb_path(tmp_path)
    for target in (lake, duck):
        wh.load(prefix, target, "--include-raw")
    got, want = lake_tables(lake), duckdb_tables(duck)
    assert all(want[t] for t in ("attendance_message", "deadletter", "plug_load_errors"))
    for table, rows in want.items():
        assert got[table] == rows, table
    got_views, want_views = lake_views(lake), duckdb_views(duck)
    for view, rows in want_views.items():
        assert got_views[view] == rows, view
    offsets = 'SELECT topic, "partition", next_offset FROM plug_offsets ORDER BY 1, 2'
    assert wh.query(lake, offsets) == wh.query(duck, offsets)
    wh.load(prefix, lake, "--include-raw")  # again: nothing changes
    assert lake_tables(lake) == got


def test_kill_9_at_random_points_then_exactly_once(broker: str, tmp_path: Path) -> None:
    prefix = wh.new_topics(partitions=3)
    produced = wh.produce(many_records(prefix, 12_000))
    rng = random.Random(32)
    log = tmp_path / "loader.log"
    target = lake_address(tmp_path)
    args = ("--instance-id", "lake-kill", "--batch-rows", "400")
    kills = last = 0
    while kills < 5:
        loader = wh.start_loader(prefix, target, log, *args)
        # progress first (a batch past the last kill's), then the kill at a random moment
        wh.wait_for(
            lambda last=last: wh.loaded_records(target) > last,  # type: ignore[misc]
            "the loader to make progress",
        )
        time.sleep(rng.uniform(0, 0.5))  # the fault's random point, not a synchronisation
        loader.kill()
        loader.wait()
        kills += 1
        last = wh.loaded_records(target)
        assert last < produced, "the load finished before the kills were done"
    wh.load(prefix, target, *args)
    assert wh.assert_exactly_once(prefix, target) == produced
    # the children too (a kill may fall between a parent's commit and its children's)
    duck = wh.duckdb_path(tmp_path)
    wh.load(prefix, duck)
    got, want = lake_tables(target), duckdb_tables(duck)
    assert want["attendance_message"]
    for table, rows in want.items():
        assert got[table] == rows, table


def test_two_loaders_in_one_group_on_a_postgresql_catalog_with_upkeep_meanwhile(
    broker: str, tmp_path: Path
) -> None:
    prefix = wh.new_topics(partitions=6)
    records = many_records(prefix, 8_000)
    produced = wh.produce(records[:4_000])
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with wh.pg_database() as database:
        target = pg_lake(database, tmp_path)
        args = ("--group", "shared", "--batch-rows", "500")
        first = wh.start_loader(prefix, target, logs[0], *args)
        second = None
        try:
            wh.wait_for(lambda: wh.loaded_records(target) > 0, "the first loader's first batch")
            second = wh.start_loader(prefix, target, logs[1], *args)
            # the group rebalanced: the second loader holds partitions of its own now
            wh.wait_for(lambda: assigned(logs[1]) > 0, "the second loader's partitions")
            produced += wh.produce(records[4_000:])  # on every partition, so on both loaders
            # upkeep while both commit: compaction and expiry lose to them or land, never
            # costing a row
            for _ in range(2):
                upkeep = cli.run(
                    "lake", "maintain", "--at", target, "--keep-hours", "0", "--min-files", "2"
                )
                assert upkeep.returncode == 0, upkeep.stderr[-3000:]
            wh.wait_for(lambda: wh.loaded_records(target) >= produced, "every record loaded")
            wh.stop_loaders((first, second), logs)
        finally:
            first.kill()
            if second is not None:
                second.kill()
        assert wh.assert_exactly_once(prefix, target) == produced
        assert loaded_count(logs[0]) > 0
        assert loaded_count(logs[1]) > 0


def test_the_postgresql_catalog_stopped_mid_load_the_loader_waits_and_resumes(
    broker: str, own_postgres: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    database, env = own_postgres
    target = pg_lake(database, tmp_path)
    prefix = wh.new_topics(partitions=3)
    produced = wh.produce(many_records(prefix, 6_000))
    log = tmp_path / "loader.log"
    # small batches: the load takes long enough to be caught in the middle
    loader = wh.start_loader(prefix, target, log, "--until-caught-up", "--batch-rows", "200")
    try:
        wh.wait_for(lambda: wh.loaded_records(target) > 0, "the first batch")
        pg = ["bash", str(PG_SCRIPT)]
        subprocess.run([*pg, "crash"], env=env, check=True, timeout=60)
        assert loader.poll() is None, "the load ended before the catalog was stopped"
        wh.wait_for(lambda: "warehouse unavailable" in log.read_text(), "the loader to wait")
        port = re.sub(r".*:(\d+)/.*", r"\1", database)
        subprocess.run([*pg, "up", port], env=env, check=True, timeout=120, capture_output=True)
        assert loader.wait(timeout=240) == 0, log.read_text()[-3000:]
    finally:
        loader.kill()
    assert wh.assert_exactly_once(prefix, target) == produced


def test_an_erasure_read_by_the_loader_leaves_the_lake_as_duckdb(
    broker: str, tmp_path: Path
) -> None:
    """The request published while the loader is stopped, as ``forget`` publishes it."""
    prefix = wh.new_topics()
    wh.produce(erasure_test.records(prefix))
    lake, duck = lake_address(tmp_path), wh.duckdb_path(tmp_path)
    policy = "acme=keep,*=pseudonymise"
    for target in (lake, duck):
        erasure_test.load(prefix, target, policy)
    request = erasure.request(Pseudonyms(erasure_test.KEYS), "acme", fx.C1, "asked")
    erasure_test.publish(prefix, request)
    for target in (lake, duck):
        erasure_test.load(prefix, target, policy)
    got = lake_tables(lake)
    assert fx.C1 not in repr(got)
    assert got == duckdb_tables(duck)
    audit = "SELECT subject, token, changed FROM plug_erasure"
    [(subject, token, changed)] = wh.query(lake, audit)
    assert (subject, token) == (request.subject, request.token)
    [(*_, duck_changed)] = wh.query(duck, audit)
    assert orjson.loads(str(changed)) == orjson.loads(str(duck_changed))
