"""Helpers of the warehouse tests: records built by the ingress's own code, a fast
producer (librdkafka), the loader as a subprocess, and read-back of both targets."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import orjson
import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition

from pipeline import ingest
from pipeline.errors import Malformed
from pipeline.lake import catalog as lake_catalog
from pipeline.lake import ledger
from pipeline.lake import read as lake_read
from pipeline.record import Record
from pipeline.simulate.generator import Generator
from pipeline.webhooks import Webhook, all_topics
from tests.support import cli, kafka
from tests.support.payloads import corpus_files

PG_URL = os.environ.get("PLUG_PIPELINE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:55432/plug")
RECEIVED_AT = 1_760_000_000_000


def record_for(webhook: Webhook, body: bytes, prefix: str, tenant: str = "acme") -> Record:
    """What the ingress publishes for this body: its event, or its dead letter."""
    try:
        return ingest.ingest(webhook, tenant, body, RECEIVED_AT, prefix)
    except Malformed as exc:
        return ingest.deadletter(webhook, tenant, body, RECEIVED_AT, prefix, exc)


def fixture_records(prefix: str) -> list[Record]:
    """Every documentation payload, the quirky ones included, plus bodies that dead-letter."""
    records = [record_for(Webhook(p.parent.name), p.read_bytes(), prefix) for p in corpus_files()]
    records += [
        record_for(Webhook.RECEIVE_MESSAGE, b"{not json", prefix),
        record_for(Webhook.MESSAGE_STATUS, b'{"status": 7}', prefix),
    ]
    return records


def simulated_records(prefix: str, n: int, seed: int = 7) -> list[Record]:
    return [record_for(w, body, prefix) for w, body in Generator(seed).take(n)]


def undecodable(prefix: str, suffix: str, n: int) -> list[Record]:
    """Records on an event topic that are not envelopes: they go to plug_load_errors."""
    return [
        Record(f"{prefix}.{suffix}", b"k", b"\xff not an envelope %d" % i, [], uuid.uuid4().hex)
        for i in range(n)
    ]


def new_topics(partitions: int = 3, bootstrap: str = kafka.BOOTSTRAP) -> str:
    prefix = f"wh{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix), partitions=partitions, bootstrap=bootstrap)
    return prefix


def produce(
    records: Iterable[Record], bootstrap: str = kafka.BOOTSTRAP, compression: str = "none"
) -> int:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "enable.idempotence": True,
            "compression.type": compression,
        }
    )
    n = 0
    for r in records:
        while True:
            try:
                headers: list[tuple[str, str | bytes | None]] = list(r.headers)
                producer.produce(r.topic, r.value, r.key, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)  # the local queue is full: let deliveries drain it
        n += 1
    assert producer.flush(60) == 0, "records left undelivered"
    return n


def loader_args(prefix: str, target: str, *args: str) -> list[str]:
    return ["load", "--to", target, "--topic-prefix", prefix, *args]


def load(
    prefix: str,
    target: str,
    *args: str,
    bootstrap: str = kafka.BOOTSTRAP,
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """``plug-pipeline load --until-caught-up``, which must exit 0."""
    result = cli.run(
        *loader_args(prefix, target, "--until-caught-up", *args),
        env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@contextmanager
def pg_database(base_url: str = PG_URL) -> Iterator[str]:
    """A database of the test's own on the local PostgreSQL; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def query(target: str, sql: str) -> list[tuple[object, ...]]:
    """Read back with a client of the test's own (the loader has exited or is elsewhere);
    a lake through DuckDB over pyiceberg's scans of its tables as they are now."""
    if target.startswith("iceberg+"):
        with lake_read.connect(target, views=False) as con:
            return con.execute(sql).fetchall()
    if target.startswith("postgresql://"):
        with psycopg.connect(target) as conn:
            return conn.execute(sql.encode()).fetchall()
    with duckdb.connect(target, read_only=True) as con:
        return con.execute(sql).fetchall()


def as_bytes(value: object) -> bytes:
    """A BYTEA / BLOB column as bytes (psycopg gives bytes, DuckDB bytes or memoryview)."""
    assert isinstance(value, bytes | bytearray | memoryview), type(value)
    return bytes(value)


def event_ids_by_topic(records: Iterable[kafka.Record]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for r in records:
        found.setdefault(r.topic, set()).add(orjson.loads(r.value)["event_id"])
    return found


def read_everything(topics: list[str], bootstrap: str = kafka.BOOTSTRAP) -> list[kafka.Record]:
    """Every record the topics hold now (their watermarks say how many)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "plug-pipeline-tests"})
    try:
        metadata = consumer.list_topics(timeout=10)
        total = 0
        for topic in topics:
            for p in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                total += high - low
    finally:
        consumer.close()
    records = kafka.read_all(topics, until=total, timeout_s=60, bootstrap=bootstrap)
    assert len(records) == total, f"read {len(records)} of {total} records"
    return records


def duckdb_path(tmp: Path) -> str:
    return str(tmp / "plug.duckdb")


def start_loader(
    prefix: str,
    target: str,
    log: Path,
    *args: str,
    bootstrap: str = kafka.BOOTSTRAP,
    wrap: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """``wrap``: words before the command (``ip netns exec NS``: on a test network's host)."""
    return cli.start(
        *loader_args(prefix, target, *args),
        log=log,
        env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        wrap=wrap,
    )


def stop_loaders(loaders: Sequence[subprocess.Popen[bytes]], logs: Sequence[Path]) -> None:
    """SIGTERM to every loader at once; each must exit 0 (its log's tail shown if not)."""
    for loader in loaders:
        loader.send_signal(signal.SIGTERM)
    for loader, log in zip(loaders, logs, strict=True):
        assert loader.wait(timeout=60) == 0, log.read_text()[-3000:]


def loaded_records(target: str) -> int:
    """Records the warehouse holds offsets for (0 before the first batch or the tables)."""
    if target.startswith("iceberg+"):
        return lake_loaded_records(target)
    try:
        rows = query(target, "SELECT coalesce(sum(next_offset), 0) FROM plug_offsets")
    except (psycopg.Error, duckdb.Error):
        return 0
    return int(str(rows[0][0]))  # an int from DuckDB, a Decimal from PostgreSQL


def lake_loaded_records(target: str) -> int:
    """The lake's offsets summed over groups and partitions, read from the summary of
    ``plug_offsets`` as the loader reads them (0 before the tables)."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
    from sqlalchemy.exc import OperationalError

    address = lake_catalog.parse(target)
    try:
        catalog = lake_catalog.open_catalog(address)
    except OperationalError:
        return 0
    try:
        table = catalog.load_table(address.identifier("plug_offsets"))
        return sum(n for tps in ledger.read(table).values() for n in tps.values())
    except (NoSuchTableError, NoSuchNamespaceError, OperationalError):
        return 0
    finally:
        catalog.engine.dispose()


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling: the loop ends on the condition itself


def assert_exactly_once(prefix: str, target: str, bootstrap: str = kafka.BOOTSTRAP) -> int:
    """Every event id on every event topic is in its table once; offsets at the ends."""
    tables = {
        "attendance.finished": "attendance_finished",
        "attendance.started": "attendance_started",
        "message.received": "message_received",
        "message.sent": "message_sent",
        "message.delivery-failed": "message_delivery_failed",
        "instance.disconnected": "instance_disconnected",
    }
    records = read_everything([f"{prefix}.{s}" for s in tables], bootstrap)
    wanted = event_ids_by_topic(records)
    for suffix, table in tables.items():
        ids = [str(eid) for (eid,) in query(target, f"SELECT event_id FROM {table}")]
        assert len(ids) == len(set(ids)), f"{table}: duplicates"
        assert set(ids) == wanted.get(f"{prefix}.{suffix}", set()), f"{table}: gap or extra"
    status = read_everything([f"{prefix}.message.status"], bootstrap)
    want_status = {
        (e["event_id"], i)
        for e in (orjson.loads(r.value) for r in status)
        for i in range(max(1, len(e["data"]["message_ids"])))
    }
    got = query(target, "SELECT event_id, position FROM message_status")
    assert len(got) == len(set(got)), "message_status: duplicates"
    assert set(got) == want_status, "message_status: gap or extra"
    assert query(target, "SELECT count(*) FROM plug_load_errors")[0][0] == 0
    return len(records) + len(status)
