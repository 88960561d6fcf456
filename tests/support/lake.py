"""Read-back of an Iceberg lake and of a DuckDB warehouse, table by table, comparable."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import duckdb

from pipeline.lake.read import connect
from pipeline.warehouse.tables import LOADED_TABLES
from pipeline.warehouse.views import VIEW_NAMES


def lake_address(tmp: Path) -> str:
    """A lake of the test's own: a SQLite catalog and a local folder."""
    return f"iceberg+sqlite:///{tmp}/lake/catalog.db?warehouse={(tmp / 'lake' / 'files').as_uri()}"


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(con.execute(sql).fetchall(), key=repr)


def tables_of(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every contract table's rows, the contract's columns only, in one order."""
    found = {}
    for table in LOADED_TABLES:
        columns = ", ".join(f'"{c}"' for c in table.column_names)
        found[table.name] = _rows(con, f"SELECT {columns} FROM {table.name}")
    return found


def _rounded(value: Any) -> Any:
    """A float to 9 significant digits: engines add up averages in their own order."""
    return float(f"{value:.9g}") if isinstance(value, float) else value


def rounded(value: Any) -> Any:
    """Dataclasses, lists and dicts with every float to 9 significant digits."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return rounded(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return _rounded(value)


def views_of(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every KPI view's rows, floats rounded, in one order."""
    found = {}
    for name in VIEW_NAMES:
        rows = con.execute(f"SELECT * FROM {name}").fetchall()
        found[name] = sorted((tuple(_rounded(v) for v in row) for row in rows), key=repr)
    return found


def lake_tables(address: str) -> dict[str, list[tuple[Any, ...]]]:
    with connect(address, views=False) as con:
        return tables_of(con)


def duckdb_tables(path: str) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(path, read_only=True) as con:
        return tables_of(con)


def lake_views(address: str) -> dict[str, list[tuple[Any, ...]]]:
    with connect(address) as con:
        return views_of(con)


def duckdb_views(path: str) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(path, read_only=True) as con:
        return views_of(con)
