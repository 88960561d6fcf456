"""Versioned schema migrations, applied by the loader itself at every start.

Each migration runs once, recorded in ``plug_schema_migrations``; the view statements
(``views.py``) run after them every time, since they are idempotent. The target runs
``apply`` inside one transaction (on PostgreSQL under an advisory lock, so two loaders
starting together migrate once). A later schema change is a new migration appended
here, written with ``IF NOT EXISTS`` (``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``) since
version 1 creates the tables as ``tables.py`` describes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.errors import WarehouseError
from pipeline.warehouse import chain, erase, isolation, views
from pipeline.warehouse.sql import (
    ID_NUMBER,
    TYPES,
    Dialect,
    Session,
    create_table,
    id_number,
    id_number_of,
    q,
)
from pipeline.warehouse.tables import LOADED_TABLES, MIGRATIONS_TABLE, OFFSETS_TABLE, Table


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[Dialect], list[str]]


def _offsets_table(dialect: Dialect) -> str:
    t = TYPES[dialect]
    return (
        f"CREATE TABLE IF NOT EXISTS {OFFSETS_TABLE} (group_name {t['text']} NOT NULL, "
        f"topic {t['text']} NOT NULL, {q('partition')} {t['int']} NOT NULL, "
        f"next_offset {t['bigint']} NOT NULL, updated_at {t['ts']} NOT NULL, "
        f"PRIMARY KEY (group_name, topic, {q('partition')}))"
    )


def _v1(dialect: Dialect) -> list[str]:
    return [_offsets_table(dialect), *(create_table(t, dialect) for t in LOADED_TABLES)]


def _rebuild(table: Table, dialect: Dialect) -> list[str]:
    """``table`` created anew as ``sql.create_table`` describes it now, its rows copied
    over: what DuckDB needs to drop a primary key or change a column's compression, which
    it cannot alter in place. The views are recreated after every migration."""
    name, columns = q(table.name), ", ".join(q(c) for c in table.column_names)
    into = values = columns
    if id_number(table, dialect):  # computed again: the table may not have it yet
        into, values = f"{columns}, {q(ID_NUMBER)}", f"{columns}, {id_number_of(q('event_id'))}"
    return [
        create_table(table, dialect, name="plug_rebuild"),
        f"INSERT INTO plug_rebuild ({into}) SELECT {values} FROM {name}",
        f"DROP TABLE {name}",
        f"ALTER TABLE plug_rebuild RENAME TO {name}",
    ]


def _v2(dialect: Dialect) -> list[str]:
    """DuckDB: the tables again without their key index (see ``sql.indexed``); child
    tables were created without one already."""
    if dialect != "duckdb":
        return []
    return [s for t in LOADED_TABLES if not t.parent for s in _rebuild(t, dialect)]


def _v3(dialect: Dialect) -> list[str]:
    """DuckDB: the tables again with their JSON columns compressed by zstd (see
    ``sql.create_table``)."""
    if dialect != "duckdb":
        return []
    return [s for t in LOADED_TABLES for s in _rebuild(t, dialect)]


def _v4(dialect: Dialect) -> list[str]:
    """DuckDB: each event id's number in its event table (see ``sql.ID_NUMBER``), for the
    rows loaded before. Files that came through a rebuild above have it already."""
    if dialect != "duckdb":
        return []
    number = q(ID_NUMBER)
    return [
        s
        for t in LOADED_TABLES
        if id_number(t, dialect)
        for s in (
            f"ALTER TABLE {q(t.name)} ADD COLUMN IF NOT EXISTS {number} UHUGEINT",
            f"UPDATE {q(t.name)} SET {number} = {id_number_of(q('event_id'))} "
            f"WHERE {number} IS NULL",
        )
    ]


def _v5(dialect: Dialect) -> list[str]:
    """The audit of erasure requests (``erase.py``): one row per request applied."""
    return [erase.audit_table(dialect)]


def _v6(dialect: Dialect) -> list[str]:
    """Each tenant's pseudonym key chain as the rows were written (``chain.py``)."""
    return [chain.chain_table(dialect)]


def _v7(dialect: Dialect) -> list[str]:
    """PostgreSQL: every table under row-level security by tenant (``isolation.py``).
    DuckDB has no users: a tenant's own file is ``load --tenant``."""
    if dialect != "postgresql":
        return []
    return isolation.migration()


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the warehouse contract: event, child, dead-letter and bookkeeping tables", _v1),
    Migration(2, "DuckDB: keys kept by the loader's anti-join instead of in-memory indexes", _v2),
    Migration(3, "DuckDB: JSON columns compressed with zstd", _v3),
    Migration(4, "DuckDB: event ids searched by a 128-bit number of each (MD5)", _v4),
    Migration(5, "plug_erasure: the erasure requests applied, by subject", _v5),
    Migration(6, "plug_pseudonym_chain: each tenant's key chain, to notice a rotation", _v6),
    Migration(7, "PostgreSQL: row-level security by tenant, plug_tenant_roles", _v7),
)
LATEST = MIGRATIONS[-1].version


def apply(session: Session, view_settings: views.ViewSettings | None = None) -> list[int]:
    """Apply what is missing, then the views; the versions applied now."""
    t = TYPES[session.dialect]
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version {t['int']} PRIMARY KEY, "
        f"name {t['text']} NOT NULL, applied_at {t['ts']} NOT NULL)"
    )
    applied = {row[0] for row in session.query(f"SELECT version FROM {MIGRATIONS_TABLE}")}
    if applied and max(applied) > LATEST:
        raise WarehouseError(
            f"the warehouse is at schema version {max(applied)}, newer than this loader's "
            f"{LATEST}: upgrade plug-pipeline"
        )
    done = []
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        for statement in migration.statements(session.dialect):
            session.execute(statement)
        session.execute(
            f"INSERT INTO {MIGRATIONS_TABLE} (version, name, applied_at) VALUES (?, ?, now())",
            (migration.version, migration.name),
        )
        done.append(migration.version)
    kpi = view_settings or views.ViewSettings()
    for statement in views.statements(
        session.dialect, time_zone=kpi.time_zone, sla_seconds=kpi.sla_seconds
    ):
        session.execute(statement)
    if session.dialect == "postgresql":
        isolation.restore_grants(session)
    return done
