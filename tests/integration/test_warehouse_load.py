"""``plug-pipeline load`` on the real broker into DuckDB and the real PostgreSQL: every
event once, children equal to the event's lists, dead letters and undecodable records
kept, and a second load changes nothing."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.webhooks import EventType, Webhook, all_topics
from tests.support import kafka, simulate
from tests.support import loader as wh
from tests.support.ingress import Ingress, start_ingress, stop_ingress

pytestmark = pytest.mark.timeout(300)

TABLE_OF_TOPIC = {
    "attendance.finished": "attendance_finished",
    "attendance.started": "attendance_started",
    "message.received": "message_received",
    "message.sent": "message_sent",
    "message.delivery-failed": "message_delivery_failed",
    "message.status": "message_status",
    "instance.disconnected": "instance_disconnected",
}
N_UNDECODABLE = 3
N_REDELIVERED = 25


def simulated(ingress: Ingress) -> None:
    """Realistic traffic through the real ingress, as a user's first try would send it."""
    simulate.run(ingress, "--rate", "400", "--duration", "2", "--seed", "23")


@pytest.fixture(scope="module")
def own_ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    """An ingress on topics of the module's own: the undecodable records written below
    must not reach the consumers of the session's ingress topics in other tests."""
    prefix = f"wl{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    running = start_ingress(tmp_path_factory.mktemp("ingress"), prefix)
    yield running
    stop_ingress(running)


@pytest.fixture(scope="module")
def topics(own_ingress: Ingress) -> tuple[str, list[kafka.Record]]:
    """The ingress's topics after a simulate run, the corpus (quirky payloads included),
    redeliveries and undecodable records; with everything they hold, read by librdkafka."""
    simulated(own_ingress)
    prefix = own_ingress.prefix
    corpus = wh.fixture_records(prefix)
    wh.produce(corpus)
    wh.produce([r for r in corpus if "event-type" in dict(r.headers)][:N_REDELIVERED])
    wh.produce(wh.undecodable(prefix, "message.sent", N_UNDECODABLE))
    topics = [f"{prefix}.{suffix}" for suffix in [*TABLE_OF_TOPIC, "deadletter"]]
    return prefix, wh.read_everything(topics)


def target_for(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "duckdb":
        yield wh.duckdb_path(tmp)
    else:
        with wh.pg_database() as url:
            yield url


@pytest.fixture(params=["duckdb", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from target_for(request.param, tmp_path)


def counts(target: str) -> dict[str, int]:
    tables = [*TABLE_OF_TOPIC.values(), "attendance_message", "attendance_category"]
    tables += ["deadletter", "plug_load_errors", "raw_webhook", "plug_offsets"]
    return {t: wh.query(target, f"SELECT count(*) FROM {t}")[0][0] for t in tables}  # type: ignore[misc]


def test_every_event_is_loaded_once_with_its_children(  # noqa: C901  (one check per table)
    topics: tuple[str, list[kafka.Record]], target: str
) -> None:
    prefix, records = topics
    wh.load(prefix, target)

    values: dict[str, dict[str, Any]] = {}  # event_id -> envelope
    by_topic: dict[str, set[str]] = {}
    undecodable = 0
    for r in records:
        suffix = r.topic.removeprefix(prefix + ".")
        if suffix == "deadletter":
            continue
        try:
            envelope = orjson.loads(r.value)
        except orjson.JSONDecodeError:
            undecodable += 1
            continue
        values[envelope["event_id"]] = envelope
        by_topic.setdefault(suffix, set()).add(envelope["event_id"])
    assert undecodable == N_UNDECODABLE
    assert len(by_topic) == len(TABLE_OF_TOPIC)  # every event type is exercised

    for suffix, table in TABLE_OF_TOPIC.items():
        rows = wh.query(target, f"SELECT event_id, count(*) FROM {table} GROUP BY event_id")
        loaded = {row[0]: row[1] for row in rows}
        assert set(loaded) == by_topic[suffix], table  # no gap, nothing extra
        if table != "message_status":
            assert set(loaded.values()) == {1}, table  # no duplicate

    # children: the transcript, the categories, the ids of a status callback, in order
    def children(table: str, column: str) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for eid, value in wh.query(
            target, f"SELECT event_id, {column} FROM {table} ORDER BY event_id, position"
        ):
            found.setdefault(str(eid), []).append(value)
        return found

    transcripts = children("attendance_message", "message_id")
    categories = children("attendance_category", "category_name")
    statuses = children("message_status", "message_id")
    for suffix in ("attendance.finished", "attendance.started"):
        for eid in by_topic[suffix]:
            messages = values[eid]["data"]["messages"]
            assert transcripts.get(eid, []) == [m["message_id"] for m in messages]
    for eid in by_topic["attendance.finished"]:
        wanted = [c["category_name"] for c in values[eid]["data"]["categories"]]
        assert categories.get(eid, []) == wanted
    for eid in by_topic["message.status"]:
        assert statuses[eid] == (values[eid]["data"]["message_ids"] or [None])

    found = counts(target)
    deadletters = [r for r in records if r.topic.endswith(".deadletter")]
    assert found["deadletter"] == len(deadletters) > 0
    assert found["plug_load_errors"] == N_UNDECODABLE
    errors = wh.query(target, "SELECT reason, value FROM plug_load_errors ORDER BY value")
    assert {wh.as_bytes(v) for _, v in errors} == {
        r.value for r in records if r.value.startswith(b"\xff")
    }
    stored = wh.query(target, 'SELECT topic, "partition", next_offset FROM plug_offsets')
    offsets = {(t, p): o for t, p, o in stored}
    ends = Counter[tuple[str, int]]()
    for r in records:
        ends[(r.topic, r.partition)] = max(ends[(r.topic, r.partition)], r.offset + 1)
    assert offsets == dict(ends)

    # the same topics again, same group and then a new one: nothing changes
    wh.load(prefix, target)
    assert counts(target) == found
    wh.load(prefix, target, "--group", "second-pass")
    again = counts(target)
    assert {k: v for k, v in again.items() if k != "plug_offsets"} == {
        k: v for k, v in found.items() if k != "plug_offsets"
    }
    assert again["plug_offsets"] == 2 * found["plug_offsets"]


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_compressed_fetches_split_across_small_batches_load_every_event_once(
    kind: str, tmp_path: Path
) -> None:
    """lz4 record batches, as the ingress writes them, each hold many of these batches:
    every fetch is split, and nothing is lost or doubled where one batch ends."""
    prefix = wh.new_topics(2)
    wh.produce(wh.simulated_records(prefix, 600), compression="lz4")
    for target in target_for(kind, tmp_path):
        wh.load(prefix, target, "--batch-rows", "7", "--batch-bytes", "20000")
        assert wh.assert_exactly_once(prefix, target) >= 600


def test_typed_columns_and_data_json_match_the_event(
    topics: tuple[str, list[kafka.Record]], tmp_path: Path
) -> None:
    """One event read back column by column; ``data`` is the event's data, whole."""
    prefix, records = topics
    target = wh.duckdb_path(tmp_path)
    wh.load(prefix, target, "--include-raw")
    finished = next(
        orjson.loads(r.value)
        for r in records
        if r.topic.endswith(".attendance.finished") and b'"categories":[{' in r.value
    )
    data = finished["data"]
    [row] = wh.query(
        target,
        "SELECT tenant, epoch_ms(received_at), attendance_number, customer_phone, department, "
        "operator_report, epoch_ms(end_time), data::VARCHAR FROM attendance_finished "
        f"WHERE event_id = '{finished['event_id']}'",
    )
    assert row[:7] == (
        finished["tenant"],
        finished["received_at"],
        str(data["attendance_number"]),
        data["customer"]["phone"],
        data["department"],
        data["operator_report"],
        data["end_time"],
    )
    assert orjson.loads(str(row[7])) == data
    raw = wh.read_everything([f"{prefix}.raw"])
    loaded_raw = wh.query(target, "SELECT event_id, body FROM raw_webhook")
    assert len(loaded_raw) == len(raw) > 0
    assert {(str(e), wh.as_bytes(b)) for e, b in loaded_raw} == {(r.event_id, r.value) for r in raw}
    assert finished["event_type"] == EventType.ATTENDANCE_FINISHED.value


def _stored_in_postgresql(message: bytes, sql: str) -> list[tuple[object, ...]]:
    """Load one receive-message webhook whose text is ``message`` (JSON) and run ``sql``."""
    from pipeline.warehouse.target import open_target
    from tests.support.payloads import FIXTURES
    from tests.support.warehouse import write_records

    body = (FIXTURES / "receive-message" / "text.json").read_bytes()
    body = body.replace(b'"message": "test"', b'"message": ' + message)
    record = wh.record_for(Webhook.RECEIVE_MESSAGE, body, "plug")
    with wh.pg_database() as url:
        target = open_target(url)
        target.migrate()
        write_records(target, [record])
        target.close()
        return wh.query(url, sql)


def test_postgresql_takes_text_with_a_nul_character() -> None:
    """PostgreSQL's text and jsonb refuse U+0000: it is replaced, the batch is not lost."""
    [(text, data)] = _stored_in_postgresql(
        b'"a\\u0000b"', "SELECT text, data->'content'->>'message' FROM message_received"
    )
    assert text == data == "a\ufffdb"


def test_postgresql_compresses_large_data_with_lz4() -> None:
    """A ``data`` past PostgreSQL's 2 kB compression threshold is stored with lz4, which
    costs the server a fraction of its default's time."""
    [(method, length)] = _stored_in_postgresql(
        b'"' + b"long words " * 400 + b'"',
        "SELECT pg_column_compression(data), length(data::text) FROM message_received",
    )
    assert isinstance(length, int)
    assert length > 4000
    assert method == "lz4"
