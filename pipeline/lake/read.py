"""The lake read through DuckDB: each table's Arrow scan as a relation, the KPI views on top.

pyiceberg plans each scan from the table's current snapshot (a consistent state of that
table, whatever a loader commits meanwhile) and reads its Parquet files into Arrow; an
in-memory DuckDB reads the Arrow tables in place and runs the same SQL as a DuckDB
warehouse, the KPI views included (``warehouse/views.py``). What is read is held in
memory: a report over a period reads the tables whole (``where`` narrows them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.lake.catalog import open_catalog, parse
from pipeline.lake.schema import BOOKKEEPING, LAKE_TABLES
from pipeline.warehouse.views import DEFAULT_SLA_SECONDS, DEFAULT_TIME_ZONE, statements

if TYPE_CHECKING:
    import duckdb


def connect(
    address: str,
    time_zone: str = DEFAULT_TIME_ZONE,
    sla_seconds: float = DEFAULT_SLA_SECONDS,
    views: bool = True,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the lake's tables as of now (and the KPI views)."""
    import duckdb

    lake = parse(address)
    catalog = open_catalog(lake)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # as the DuckDB warehouse's sessions
    try:
        for lt in (*LAKE_TABLES, *BOOKKEEPING):
            scanned = catalog.load_table(lake.identifier(lt.name)).scan().to_arrow()
            con.register(lt.name, scanned)
        if views:
            for sql in statements("duckdb", time_zone=time_zone, sla_seconds=sla_seconds):
                con.execute(sql)
    finally:
        catalog.engine.dispose()
    return con
