"""Spark (PySpark in local mode, Iceberg's Spark runtime from Maven Central) reads the lake's
tables through Iceberg's JDBC catalog, and the KPI views in Spark SQL (``lake views``)
give the figures DuckDB's views give on the same events."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline.lake.target import IcebergTarget
from pipeline.warehouse.duckdb import DuckDBTarget
from pipeline.warehouse.tables import LOADED_TABLES
from pipeline.warehouse.views import VIEW_NAMES, spark_statements
from tests.support import spark as sp
from tests.support.lake import lake_address
from tests.support.warehouse import write_records
from tests.unit.test_lake import traffic

pytestmark = [
    pytest.mark.timeout(600),  # the jars fetched once (47 MB), a JVM started
    # py4j leaves a socket of its callback connection to the garbage collector
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def test_spark_reads_the_lake_and_its_kpis_match_duckdbs(tmp_path: Path) -> None:
    records = traffic()
    address, path = lake_address(tmp_path), str(tmp_path / "w.duckdb")
    lake, duck = IcebergTarget(address), DuckDBTarget(path)
    for target in (lake, duck):
        target.migrate()
        write_records(target, records)
    lake.close()
    duck.close()
    with duckdb.connect(path, read_only=True) as con:
        counts = {
            t.name: con.execute(f"SELECT count(*) FROM {t.name}").fetchone() for t in LOADED_TABLES
        }
        want = {v: sp.rows(con.execute(f"SELECT * FROM {v}").fetchall()) for v in VIEW_NAMES}
    with sp.session(address, tmp_path / "spark") as spark:
        for table, (n,) in counts.items():  # type: ignore[misc]
            assert spark.sql(f"SELECT count(*) FROM {table}").collect()[0][0] == n, table
        for statement in spark_statements():
            spark.sql(statement)
        got = {v: sp.rows(spark.sql(f"SELECT * FROM {v}").collect()) for v in VIEW_NAMES}
    assert want["kpi_daily"]
    assert want["message_delivery"]
    for view in VIEW_NAMES:
        assert got[view] == want[view], view
