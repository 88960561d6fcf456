"""The server target: PostgreSQL through psycopg 3.

Each table's rows are streamed with ``COPY`` into a session-local staging table, then
inserted if absent from there; rows and offsets commit together. A lost connection
raises ``WarehouseUnavailable`` and the next call reconnects, so the loader can retry
the same batch once the server is back.

A server cut off by the network does not refuse: packets vanish and a socket waits on
TCP's own timers (a minute and more). So both ends of the connection bound every wait
(``CLIENT_SETTINGS``, ``SERVER_SETTINGS``): the client gives up on a dead connection
within seconds, and the server ends a transaction whose client vanished, freeing its
locks for the loader's next connection. An address's own parameters take precedence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pipeline.errors import WarehouseError, WarehouseUnavailable
from pipeline.privacy.subject import Pseudonyms
from pipeline.warehouse import chain, erase, migrations
from pipeline.warehouse.batch import TP, Batch
from pipeline.warehouse.offsets import OFFSETS_QUERY, move_offsets
from pipeline.warehouse.personal import Erased
from pipeline.warehouse.rows import Row
from pipeline.warehouse.sql import (
    Dialect,
    Session,
    create_staging,
    insert_if_absent,
    q,
    staging_name,
)
from pipeline.warehouse.tables import LOADED_TABLES
from pipeline.warehouse.views import ViewSettings

T = TypeVar("T")
# Serialises migrations of loaders that start together (an arbitrary constant: "plug").
_MIGRATION_LOCK = 0x706C7567
# libpq's side: a connect that gets no answer in 3 s fails (libpq's least is 2); data
# unacknowledged for 5 s, or an idle connection whose keepalive probes go unanswered
# (3 s, then 3 probes 1 s apart), ends the connection.
CLIENT_SETTINGS: dict[str, str | int] = {
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 3,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}
# The server's side, for this session only: the same bounds on its socket, so a
# transaction whose loader vanished ends within seconds rather than hours, and a statement
# or a lock wait that outlasts any batch (the largest took 20 s under load) ends too,
# as a failure the loader retries.
SERVER_SETTINGS: dict[str, str] = {
    "tcp_keepalives_idle": "3",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "5000",
    "idle_in_transaction_session_timeout": "30s",
    "statement_timeout": "120s",
    "lock_timeout": "60s",
}
_LZ4 = (
    b"SELECT set_config('default_toast_compression', 'lz4', false) FROM pg_settings "
    b"WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


def connect_parameters(url: str) -> dict[str, Any]:
    """The keyword parameters ``psycopg.connect`` gets besides the address: our bounds on
    every wait, except those the address sets itself."""
    given = conninfo_to_dict(url)
    params: dict[str, Any] = {k: v for k, v in CLIENT_SETTINGS.items() if k not in given}
    server = " ".join(f"-c {k}={v}" for k, v in SERVER_SETTINGS.items())
    # the address's own options come last: where both set one, PostgreSQL takes the last
    params["options"] = f"-c TimeZone=UTC {server} {given.get('options') or ''}".strip()
    return params


def _masked(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _without_nul(row: Row) -> Row:
    """PostgreSQL text and jsonb cannot hold U+0000: it becomes U+FFFD."""
    return tuple(
        v.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd") if isinstance(v, str) else v
        for v in row
    )


class PostgresTarget:
    dialect: Dialect = "postgresql"
    # Batches three times larger while the loader is behind: fewer statements and commits
    # for the server (replays of 200,000 records: 14-23 % more events/s; the loader's
    # peak RSS 125 -> 205 MB, three batches of rows being held at most).
    catch_up_factor = 3

    def __init__(self, url: str, view_settings: ViewSettings | None = None) -> None:
        self.view_settings = view_settings
        self.url = url
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._copies = {
            t: f"COPY {q(staging_name(t))} ({', '.join(q(c) for c in t.column_names)}) FROM STDIN"
            for t in LOADED_TABLES
        }
        self._inserts = {
            t: insert_if_absent(t, q(staging_name(t)), "postgresql") for t in LOADED_TABLES
        }

    def describe(self) -> str:
        return _masked(self.url)

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(
            self.url,
            autocommit=True,
            application_name="plug-pipeline load",
            **connect_parameters(self.url),
        )
        # ``data`` is usually past the 2 kB at which PostgreSQL compresses a value; its
        # default (pglz) took a quarter of the server's time per event, lz4 a fraction of
        # that. Only where the server was built with lz4; any server reads either.
        conn.execute(_LZ4)
        # session-local staging tables; ON COMMIT DELETE ROWS empties them after each batch
        for table in LOADED_TABLES:
            conn.execute(create_staging(table, "postgresql").encode())
        self._conn = conn
        return conn

    def _run(self, work: Callable[[psycopg.Connection[tuple[Any, ...]]], T]) -> T:
        """Run ``work`` in one transaction, turning a lost server into WarehouseUnavailable."""
        try:
            conn = self._connection()
            with conn.transaction():
                return work(conn)
        except psycopg.OperationalError as exc:
            self._drop()
            raise WarehouseUnavailable(f"PostgreSQL: {exc}".strip()) from exc
        except psycopg.Error as exc:
            if self._conn is not None and self._conn.closed:
                self._drop()
                raise WarehouseUnavailable(f"PostgreSQL: {exc}".strip()) from exc
            raise WarehouseError(f"PostgreSQL refused the batch: {exc}".strip()) from exc

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def migrate(self) -> list[int]:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> list[int]:
            # a migration may rewrite a large table, and waits for another loader's: its
            # statements are bounded by the connection's liveness only
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SET LOCAL lock_timeout = 0")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            return migrations.apply(_Session(conn), self.view_settings)

        return self._run(work)

    def offsets(self, group: str) -> dict[TP, int]:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[TP, int]:
            rows = _Session(conn).query(OFFSETS_QUERY, (group,))
            return {(topic, partition): offset for topic, partition, offset in rows}

        return self._run(work)

    def erased(self) -> list[Erased]:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> list[Erased]:
            return erase.erased(_Session(conn).query(erase.erased_query(self.dialect)))

        return self._run(work)

    def check_chains(self, pseudonyms: Pseudonyms) -> list[str]:
        return self.transact(lambda session: chain.check(session, pseudonyms))

    def ping(self) -> None:
        self._run(lambda conn: conn.execute("SELECT 1").fetchall())

    def transact(self, work: Callable[[Session], T]) -> T:
        def unbounded(conn: psycopg.Connection[tuple[Any, ...]]) -> T:
            # a rotation moves every stored pseudonym in one transaction: bounded by the
            # connection's liveness only, as a migration is
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SET LOCAL lock_timeout = 0")
            return work(_Session(conn))

        return self._run(unbounded)

    def prepare(self, batch: Batch) -> None:
        """Nothing: ``COPY`` formats the rows as it streams them (in C, without the GIL
        for most of it), and a retry without NUL characters needs them as they are."""

    def write(self, group: str, batch: Batch, expected: Mapping[TP, int | None]) -> None:
        try:
            self._run(lambda conn: self._write(conn, group, batch, expected, clean=False))
        except WarehouseError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.DataError) or isinstance(
                exc, WarehouseUnavailable
            ):
                raise
            # a NUL character somewhere in the batch: write it again without them
            self._run(lambda conn: self._write(conn, group, batch, expected, clean=True))

    def _write(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        group: str,
        batch: Batch,
        expected: Mapping[TP, int | None],
        clean: bool,
    ) -> None:
        session = _Session(conn)
        with conn.cursor() as cur:
            for table, rows in batch.rows.items():
                with cur.copy(self._copies[table]) as copy:
                    for row in rows:
                        copy.write_row(_without_nul(row) if clean else row)
                cur.execute(self._inserts[table])
        erase.apply_all(session, batch.erasures)  # after the rows: this batch's are found too
        move_offsets(session, group, batch.offsets, expected)

    def close(self) -> None:
        self._drop()


class _Session:
    """sql.Session over one connection; ``?`` -> ``%s``."""

    dialect: Dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if params:
            self._conn.execute(sql.replace("?", "%s").encode(), params)
        else:
            self._conn.execute(sql.encode())

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.execute(sql.replace("?", "%s").encode(), params or None)
        return cur.fetchall()

    def changed(self, sql: str, params: Sequence[Any]) -> int:
        return self._conn.execute(sql.replace("?", "%s").encode(), params).rowcount
