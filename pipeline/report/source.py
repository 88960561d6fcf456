"""A read-only connection to the warehouse: a DuckDB file, a ``postgresql://`` URL, or an
``iceberg+`` lake (read through DuckDB, ``pipeline/lake/read.py``).

The report only reads views, so it opens DuckDB read-only and PostgreSQL in one
read-only, repeatable-read transaction. Queries are written once with
psycopg's named placeholders, ``%(name)s``; DuckDB gets them as ``$name``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from pipeline.errors import ConfigError
from pipeline.warehouse.address import kind_of
from pipeline.warehouse.views import ViewSettings

Dialect = Literal["duckdb", "postgresql"]
Params = Mapping[str, Any]

_NAMED = re.compile(r"%\((\w+)\)s")


def is_postgres_url(target: str) -> bool:
    """``ConfigError`` for an address of a scheme no warehouse has (``address.py``)."""
    return kind_of(target) == "postgresql"


class Source(Protocol):
    dialect: Dialect

    def rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class _Closing:
    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _as_dicts(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


class DuckDBSource(_Closing):
    dialect: Dialect = "duckdb"

    def __init__(self, path: str) -> None:
        import duckdb

        if not Path(path).is_file():
            raise ConfigError(f"no DuckDB warehouse at {path!r} (run `plug-pipeline load` first)")
        try:
            self._conn = duckdb.connect(path, read_only=True)
        except duckdb.Error as exc:
            raise ConfigError(f"cannot open the DuckDB warehouse {path!r}: {exc}") from exc

    def rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        # DuckDB refuses parameters the statement does not name: pass only those it does.
        wanted = set(_NAMED.findall(sql))
        values = {k: v for k, v in (params or {}).items() if k in wanted}
        cursor = self._conn.execute(_NAMED.sub(r"$\1", sql), values)
        columns = [d[0] for d in cursor.description or ()]
        return _as_dicts(columns, cursor.fetchall())

    def close(self) -> None:
        self._conn.close()


class LakeSource(DuckDBSource):
    """The lake's tables as of now in an in-memory DuckDB, with the KPI views made there
    with ``view_settings`` (a DuckDB or PostgreSQL warehouse has them from the loader)."""

    def __init__(self, address: str, view_settings: ViewSettings | None = None) -> None:
        from pipeline.errors import WarehouseUnavailable
        from pipeline.lake.read import connect

        settings = view_settings or ViewSettings()
        try:
            self._conn = connect(address, settings.time_zone, settings.sla_seconds)
        except WarehouseUnavailable as exc:
            raise ConfigError(f"cannot read the lake: {exc}") from exc


class PostgresSource(_Closing):
    dialect: Dialect = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg

        try:
            self._conn = psycopg.connect(url)
        except psycopg.Error as exc:
            # The message can quote the URL's password: say only what kind of failure it was.
            raise ConfigError(f"cannot connect to PostgreSQL: {type(exc).__name__}") from exc
        # One read-only snapshot for the whole report: every figure sees the same rows
        # even while a loader commits.
        self._conn.read_only = True
        self._conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        # The views' row estimates run high (window functions, outer joins), which makes
        # PostgreSQL JIT-compile each query: seconds of compiling for sub-second queries.
        with self._conn.cursor() as cursor:
            cursor.execute(b"SET jit = off")
        self._conn.commit()

    def rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        with self._conn.cursor() as cursor:
            cursor.execute(sql.encode(), dict(params or {}))
            columns = [d.name for d in cursor.description or ()]
            return _as_dicts(columns, cursor.fetchall())

    def close(self) -> None:
        self._conn.close()


def open_source(
    target: str, view_settings: ViewSettings | None = None
) -> DuckDBSource | PostgresSource:
    """The warehouse named by ``target``: a ``postgresql://`` URL, an ``iceberg+`` lake
    (its KPI views made with ``view_settings``), else a DuckDB file path."""
    kind = kind_of(target)
    if kind == "postgresql":
        return PostgresSource(target)
    if kind == "iceberg":
        return LakeSource(target, view_settings)
    return DuckDBSource(target)
