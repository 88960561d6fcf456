"""Pseudonymised analytics and erasure through the loader, on the real broker, into DuckDB
and PostgreSQL: the KPI centre of ``kpi_fixtures`` (two tenants) published to topics of
the test's own, loaded by ``plug-pipeline load``, and an erasure request published as
``forget`` publishes it while the loader is stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson
import psycopg
import pytest

from pipeline import ingest
from pipeline.events.models import Envelope, ErasureRequested
from pipeline.privacy import erasure
from pipeline.privacy.subject import Pseudonyms
from pipeline.record import Record
from pipeline.route import event_topic
from pipeline.warehouse.views import VIEW_NAMES
from pipeline.webhooks import EventType, Webhook
from tests.support import cli, kafka
from tests.support import kpi_fixtures as fx
from tests.support import loader as ld

KEYS = {"acme": ("acme-secret",), "globex": ("globex-secret",)}
ENV_KEYS = ",".join(f"{t}={k}" for t, chain in KEYS.items() for k in chain)
PERSONAL_COLUMNS = {"customer_phone", "customer_name", "phone", "sender_name", "chat_name"}
PHONES = (fx.C1, fx.C2, fx.C3, fx.C4, "5521900000009")


@pytest.fixture(params=["duckdb", "postgresql"])
def targets(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two fresh warehouses of one kind."""
    if request.param == "duckdb":
        yield str(tmp_path / "a.duckdb"), str(tmp_path / "b.duckdb")
    else:
        with ld.pg_database() as a, ld.pg_database() as b:
            yield a, b


def records(prefix: str) -> list[Record]:
    return [
        ingest.ingest(webhook, tenant, orjson.dumps(body), received_at, prefix)
        for tenant, webhook, body, received_at in fx.items()
    ]


def load(prefix: str, target: str, policy: str) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP, "PLUG_PIPELINE_PRIVACY_POLICY": policy,
           "PLUG_PIPELINE_PRIVACY_KEYS": ENV_KEYS}  # fmt: skip
    result = cli.run(*ld.loader_args(prefix, target, "--until-caught-up"), env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]


def tables(target: str) -> dict[str, list[tuple[Any, ...]]]:
    schema = "public" if target.startswith("postgresql://") else "main"
    names = ld.query(
        target,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
        f"'{schema}' AND table_type = 'BASE TABLE'",
    )
    return {
        str(n): sorted(
            (tuple(_plain(v) for v in row) for row in ld.query(target, f'SELECT * FROM "{n}"')),
            key=repr,
        )
        for (n,) in names
    }


def text_of(found: dict[str, list[tuple[Any, ...]]]) -> str:
    return repr(found)


def _plain(value: Any) -> Any:
    """A value comparable and searchable as text: bytes decoded, JSON (PostgreSQL gives
    it decoded) as its text with sorted keys."""
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value


def figures(target: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every KPI view without its columns that name a customer."""
    found = {}
    for view in VIEW_NAMES:
        rows, names = _rows(target, view)
        keep = [i for i, n in enumerate(names) if n not in PERSONAL_COLUMNS]
        found[view] = sorted((tuple(r[i] for i in keep) for r in rows), key=repr)
    return found


def _rows(target: str, view: str) -> tuple[list[tuple[Any, ...]], list[str]]:
    from pipeline.report.source import open_source

    with open_source(target) as source:
        dicts = source.rows(f"SELECT * FROM {view}")
    names = list(dicts[0]) if dicts else []
    return [tuple(d.values()) for d in dicts], names


def publish(prefix: str, request: ErasureRequested, tenant: str = "acme") -> None:
    envelope = Envelope(
        event_id=request.request_id,
        event_type=EventType.ERASURE_REQUESTED.value,
        tenant=tenant,
        received_at=request.requested_at,
        data=request,
    )
    kafka.produce(
        event_topic(prefix, EventType.ERASURE_REQUESTED),
        msgspec.json.encode(envelope),
        f"{tenant}:{request.subject}".encode(),
        [("event-type", EventType.ERASURE_REQUESTED.value.encode())],
    )


def test_pseudonymised_warehouse_holds_no_phone_and_the_same_figures(
    targets: tuple[str, str],
) -> None:
    kept, pseudonymised = targets
    prefix = ld.new_topics()
    ld.produce(records(prefix))
    load(prefix, kept, "keep")
    load(prefix, pseudonymised, "pseudonymise")
    assert fx.C1 in text_of(tables(kept))  # the search can find one
    everything = text_of(tables(pseudonymised))
    for phone in PHONES:
        assert phone not in everything, phone
    assert "customer 1" not in everything
    assert "text of a1" not in everything
    assert figures(pseudonymised) == figures(kept)


def test_erasure_applied_when_the_loader_starts(targets: tuple[str, str]) -> None:
    target, _ = targets
    prefix = ld.new_topics()
    ld.produce(records(prefix))
    policy = "acme=keep,*=pseudonymise"
    load(prefix, target, policy)
    before, rows_before = figures(target), tables(target)
    pseudonyms = Pseudonyms(KEYS)
    request = erasure.request(pseudonyms, "acme", fx.C1, "asked by the customer")
    publish(prefix, request)  # the loader is stopped
    load(prefix, target, policy)
    after = tables(target)
    everything = text_of(after)
    for gone in (fx.C1, "customer 1", "text of a1", "text of c2"):
        assert gone not in everything, gone
    assert figures(target) == before
    erased_ids = {
        r[0] for rows in rows_before.values() for r in rows if fx.C1 in text_of({"": [r]})
    }
    untouched = {r for rows in rows_before.values() for r in rows if r[0] not in erased_ids}
    assert untouched <= {r for rows in after.values() for r in rows}
    assert fx.C2 in everything  # another customer of the tenant
    [audit] = ld.query(target, "SELECT subject, token, changed FROM plug_erasure")
    assert audit[:2] == (request.subject, request.token)
    changed = audit[2] if isinstance(audit[2], dict) else orjson.loads(str(audit[2]))
    assert changed["attendance_finished"] == 2
    # a second request changes nothing more
    again = erasure.request(pseudonyms, "acme", fx.C1)
    publish(prefix, again)
    load(prefix, target, policy)
    [(second,)] = ld.query(
        target, f"SELECT changed FROM plug_erasure WHERE request_id = '{again.request_id}'"
    )
    second = second if isinstance(second, dict) else orjson.loads(str(second))
    assert set(second.values()) == {0}
    # an event of the customer from before the request, loaded only now, takes the token
    late = {
        "phone": fx.C1,
        "messageId": "late1",
        "momment": fx.ms(fx.DAY1, "13:00:00"),
        "fromMe": False,
        "senderName": "customer 1",
        "text": {"message": "late1 text"},
    }
    at = fx.ms(fx.DAY1, "13:00:01")
    ld.produce([ingest.ingest(Webhook.RECEIVE_MESSAGE, "acme", orjson.dumps(late), at, prefix)])
    load(prefix, target, policy)
    [(phone,)] = ld.query(target, "SELECT phone FROM message_received WHERE message_id = 'late1'")
    assert phone == request.token
    assert fx.C1 not in text_of(tables(target))


def test_subject_prints_the_customers_events_in_order_and_no_one_elses(
    targets: tuple[str, str],
) -> None:
    target, _ = targets
    prefix = ld.new_topics()
    ld.produce(records(prefix))
    load(prefix, target, "keep")
    result = cli.run("subject", "--tenant", "acme", "--phone", fx.C2, "--from", target)
    assert result.returncode == 0, result.stderr[-2000:]
    document = orjson.loads(result.stdout)
    events = document["events"]
    # C2: #102 started and finished twice, #106 started
    assert [e["event_type"] for e in events] == [
        "attendance.started", "attendance.finished", "attendance.finished", "attendance.started"
    ]  # fmt: skip
    times = [e["received_at"] for e in events]
    assert times == sorted(times)
    text = result.stdout
    assert fx.C2 in text
    for other in (fx.C1, fx.C3, fx.C4, "5521900000009"):
        assert other not in text


def test_forget_while_the_loader_runs(tmp_path: Path) -> None:
    """The ``forget`` command itself, while a loader runs on PostgreSQL (read by a client of
    the test's own while the loader is still up); the audit row's counts are the rows that
    changed. DuckDB has one writer, so its loader is stopped to be read: the test above."""
    prefix = ld.new_topics()
    ld.produce(records(prefix))
    policy = "*=keep"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP,
        "PLUG_PIPELINE_PRIVACY_POLICY": policy,
        "PLUG_PIPELINE_PRIVACY_KEYS": ENV_KEYS,
        "PLUG_PIPELINE_TOPIC_PREFIX": prefix,
    }
    with ld.pg_database() as target:
        loader = cli.start(*ld.loader_args(prefix, target), log=tmp_path / "load.log", env=env)
        try:
            total = len(records(prefix))
            ld.wait_for(lambda: ld.loaded_records(target) >= total, "the centre loaded")
            before, rows_before = figures(target), tables(target)
            forget = cli.run("forget", "--tenant", "acme", "--phone", fx.C1, "--json", env=env)
            assert forget.returncode == 0, forget.stderr[-2000:]
            receipt = orjson.loads(forget.stdout)
            ld.wait_for(lambda: _audited(target), "the erasure applied by the running loader")
            assert loader.poll() is None  # applied by the loader that was running
            after = tables(target)
        finally:
            loader.terminate()
            loader.wait(30)
        everything = text_of(after)
        for gone in (fx.C1, "customer 1", "text of a1", "text of c2"):
            assert gone not in everything, gone
        assert fx.C2 in everything
        assert figures(target) == before
        [(subject, changed)] = ld.query(target, "SELECT subject, changed FROM plug_erasure")
        assert subject == receipt["subject"]
        assert isinstance(changed, dict)
        for table, rows in rows_before.items():
            if table in changed and table != "plug_load_errors":
                gone_rows = {r for r in rows if r not in set(after[table])}
                assert changed[table] == len(gone_rows), (table, changed[table], len(gone_rows))
        assert changed["attendance_finished"] == 2
        assert changed["message_received"] == sum(
            1 for r in rows_before["message_received"] if fx.C1 in text_of({"": [r]})
        )


def _audited(target: str) -> bool:
    try:
        return bool(ld.query(target, "SELECT count(*) FROM plug_erasure")[0][0])
    except psycopg.Error:  # the table appears with the loader's migration
        return False


def test_a_key_rotation_applied_by_rekey_keeps_the_history_joined(
    targets: tuple[str, str],
) -> None:
    target, _ = targets
    prefix = ld.new_topics()
    ld.produce(records(prefix))
    load(prefix, target, "pseudonymise")
    before, rows_before = figures(target), tables(target)
    old, new = Pseudonyms(KEYS), Pseudonyms({**KEYS, "acme": ("acme-secret", "acme-2027")})
    rotated = f"{ENV_KEYS},acme=acme-2027"
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.BOOTSTRAP, "PLUG_PIPELINE_PRIVACY_KEYS": rotated,
           "PLUG_PIPELINE_PRIVACY_POLICY": "pseudonymise"}  # fmt: skip
    refused = cli.run(*ld.loader_args(prefix, target, "--until-caught-up"), env=env)
    assert refused.returncode == 2
    assert "plug-pipeline rekey --tenant acme" in refused.stderr
    assert "acme-2027" not in refused.stderr
    result = cli.run("rekey", "--tenant", "acme", "--to", target, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    changed = orjson.loads(result.stdout)["changed"]
    assert changed["attendance_finished"] >= 2
    everything = text_of(tables(target))
    assert old.of("acme", fx.C1) not in everything
    assert new.of("acme", fx.C1) in everything
    globex = {n: [r for r in rows if "globex" in r] for n, rows in rows_before.items()}
    after = tables(target)
    for name, rows in globex.items():
        assert set(rows) <= set(after[name]), name  # the other tenant untouched
    assert figures(target) == before
    # the rotated loader starts, and a new message of the customer joins their history
    late = {"phone": fx.C1, "messageId": "rot1", "momment": fx.ms(fx.DAY1, "13:00:00"),
            "fromMe": False, "text": {"message": "after the rotation"}}  # fmt: skip
    at = fx.ms(fx.DAY1, "13:00:01")
    ld.produce([ingest.ingest(Webhook.RECEIVE_MESSAGE, "acme", orjson.dumps(late), at, prefix)])
    again = cli.run(*ld.loader_args(prefix, target, "--until-caught-up"), env=env, timeout=240)
    assert again.returncode == 0, again.stderr[-3000:]
    [(phone,)] = ld.query(target, "SELECT phone FROM message_received WHERE message_id = 'rot1'")
    assert phone == new.of("acme", fx.C1)
    [(history,)] = ld.query(
        target, "SELECT customer_phone FROM attendance_finished WHERE tenant = 'acme' LIMIT 1"
    )
    assert str(history).startswith("ps:")
    assert old.of("acme", fx.C1) not in text_of(tables(target))
    twice = cli.run("rekey", "--tenant", "acme", "--to", target, env=env)
    assert twice.returncode == 0
    assert orjson.loads(twice.stdout)["changed"] == {}
