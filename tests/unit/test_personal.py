"""What the loader keeps of personal data: the policy at load time, erased customers,
and an erasure applied to a DuckDB warehouse (no server needed; the loader's own path on
both targets is in tests/integration/test_erasure.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from pipeline import config as configuration
from pipeline import ingest
from pipeline.consume.decode import decode_event
from pipeline.errors import ConfigError
from pipeline.events.models import Envelope, ErasureRequested, Message
from pipeline.privacy import erasure
from pipeline.privacy.policy import Policies
from pipeline.privacy.subject import Pseudonyms
from pipeline.record import Record
from pipeline.route import event_topic
from pipeline.warehouse import views
from pipeline.warehouse.batch import Batch
from pipeline.warehouse.duckdb import DuckDBTarget
from pipeline.warehouse.personal import Erased, Personal, check_keys, token_for
from pipeline.webhooks import EventType, Webhook
from tests.support import kpi_fixtures as fx
from tests.support.warehouse import write_records

KEYS = {"acme": ("acme-secret",), "globex": ("globex-secret",)}
PERSONAL_COLUMNS = {"customer_phone", "customer_name", "phone", "sender_name", "chat_name"}


def personal(policy: str, keys: dict[str, tuple[str, ...]] | None = None) -> Personal:
    return Personal(Policies(policy, Pseudonyms(KEYS if keys is None else keys)))


def message(phone: str = fx.C1, received_at: int = 1_000) -> tuple[Any, str]:
    body = {"phone": phone, "messageId": "m1", "momment": 5, "senderName": "Maria",
            "text": {"message": "my address is ..."}, "fromMe": False}  # fmt: skip
    record = ingest.ingest(Webhook.RECEIVE_MESSAGE, "acme", orjson.dumps(body), received_at, "p")
    event = decode_event(EventType.MESSAGE_RECEIVED, record.value)
    data = orjson.dumps(orjson.loads(record.value)["data"]).decode()
    return event, data


def phone_of(event: Any) -> str | None:
    assert isinstance(event.data, Message)
    return event.data.phone


def test_keep_hands_the_event_and_its_text_back_untouched() -> None:
    event, data = message()
    kept_event, kept_data = personal("keep").event(event, data)
    assert kept_event is event
    assert kept_data is data


def test_pseudonymise_leaves_no_phone_name_or_text_in_the_data() -> None:
    event, data = message()
    kept_event, kept_data = personal("pseudonymise").event(event, data)
    assert isinstance(kept_event.data, Message)
    assert phone_of(kept_event) == Pseudonyms(KEYS).of("acme", fx.C1)
    for value in (fx.C1, "Maria", "my address"):
        assert value not in kept_data
    assert msgspec.json.decode(kept_data, type=Message) == kept_event.data


def test_a_tenant_without_a_key_is_stored_under_drop_told_once_counted_always(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted: list[str] = []
    keeper = Personal(Policies("pseudonymise", Pseudonyms({"globex": ("k",)})), counted.append)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            kept_event, kept_data = keeper.event(*message())
            assert phone_of(kept_event) is None
            assert fx.C1 not in kept_data
    assert counted == ["acme"] * 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "acme" in warnings[0]
    assert fx.C1 not in warnings[0]


def test_the_loader_refuses_to_pseudonymise_without_any_key() -> None:
    with pytest.raises(ConfigError, match="no pseudonym key"):
        check_keys(configuration.load({}))
    with pytest.raises(ConfigError, match="acme"):
        check_keys(configuration.load({"PLUG_PIPELINE_PRIVACY_POLICY": "acme=pseudonymise,*=keep"}))
    check_keys(configuration.load({"PLUG_PIPELINE_PRIVACY_POLICY": "keep"}))
    check_keys(configuration.load({"PLUG_PIPELINE_PRIVACY_KEYS": "acme=s"}))


def test_an_erased_customers_earlier_events_take_the_token_later_ones_only_if_suppressed() -> None:
    first = Erased("acme", "ps:x", "erased:1", requested_at=100, suppress=False)
    second = Erased("acme", "ps:x", "erased:2", requested_at=200, suppress=True)
    assert token_for([first], 50) == "erased:1"
    assert token_for([first], 100) == "erased:1"
    assert token_for([first], 101) is None  # wrote again afterwards: a new contact
    assert token_for([second, first], 150) == "erased:2"
    assert token_for([second, first], 50) == "erased:1"
    assert token_for([first, second], 999) == "erased:2"


def test_a_remembered_erasure_scrubs_a_late_event_of_its_customer() -> None:
    keeper = personal("keep")
    subject = Pseudonyms(KEYS).of("acme", fx.C1)
    keeper.remember(Erased("acme", subject, "erased:t", requested_at=2_000, suppress=False))
    late_event, late_data = keeper.event(*message(received_at=1_500))
    assert phone_of(late_event) == "erased:t"
    assert fx.C1 not in late_data
    assert "Maria" not in late_data
    after_event, _ = keeper.event(*message(received_at=2_500))
    assert phone_of(after_event) == fx.C1
    other_event, _ = keeper.event(*message(phone=fx.C2, received_at=1_500))
    assert phone_of(other_event) == fx.C2


# -- an erasure applied to a DuckDB warehouse --------------------------------------------


def erasure_record(request: ErasureRequested, tenant: str = "acme") -> Record:
    envelope = Envelope(
        event_id=request.request_id,
        event_type=EventType.ERASURE_REQUESTED.value,
        tenant=tenant,
        received_at=request.requested_at,
        data=request,
    )
    headers = [("event-type", EventType.ERASURE_REQUESTED.value.encode())]
    topic = event_topic("plug", EventType.ERASURE_REQUESTED)
    return Record(
        topic, f"{tenant}:{request.subject}".encode(), msgspec.json.encode(envelope), headers,
        request.request_id,
    )  # fmt: skip


def dump(target: DuckDBTarget) -> dict[str, list[tuple[Any, ...]]]:
    names = [n for (n,) in target.query("SELECT table_name FROM duckdb_tables()")]
    return {n: sorted(target.query(f'SELECT * FROM "{n}"'), key=repr) for n in names}


def figures(target: DuckDBTarget) -> dict[str, list[tuple[Any, ...]]]:
    """Every KPI view without its columns that name a customer."""
    found = {}
    for view in views.VIEW_NAMES:
        rows = target.query(f"SELECT * FROM {view}")
        names = [c for (c,) in target.query(f"SELECT column_name FROM (DESCRIBE {view})")]
        keep = [i for i, n in enumerate(names) if n not in PERSONAL_COLUMNS]
        found[view] = sorted((tuple(r[i] for i in keep) for r in rows), key=repr)
    return found


@pytest.mark.parametrize("policy", ["keep", "pseudonymise"])
def test_an_erasure_leaves_nothing_of_the_customer_and_the_same_figures(
    tmp_path: Path, policy: str
) -> None:
    target = DuckDBTarget(str(tmp_path / "w.duckdb"))
    keeper = personal(policy)
    target.migrate()
    write_records(target, fx.records(), keeper)
    before, tables_before = figures(target), dump(target)
    request = erasure.request(Pseudonyms(KEYS), "acme", fx.C1, now_ms=fx.ms(fx.DAY2, "23:00:00"))
    write_records(target, [erasure_record(request)], keeper)
    after = dump(target)
    text = repr(after)
    for gone in (fx.C1, "customer 1", "text of a1", "text of c2"):
        assert gone not in text, gone
    # the audit keeps the subject; no row of data does
    assert request.subject not in repr({k: v for k, v in after.items() if k != "plug_erasure"})
    assert figures(target) == before
    # every row of another customer or tenant is as it was (rows start with their event_id)
    names = (fx.C1, request.subject)
    erased = {
        r[0] for rows in tables_before.values() for r in rows if any(n in repr(r) for n in names)
    }
    untouched = [r for rows in tables_before.values() for r in rows if r[0] not in erased]
    assert len(untouched) > len(erased)
    assert set(untouched) <= {r for rows in after.values() for r in rows}
    [audit] = target.query("SELECT subject, token, changed FROM plug_erasure")
    assert audit[:2] == (request.subject, request.token)
    changed = orjson.loads(audit[2])
    assert changed["attendance_finished"] == 2  # #101 and #103
    assert changed["message_status"] == 3
    # a second request for the customer finds nothing more to change
    again = erasure.request(Pseudonyms(KEYS), "acme", fx.C1, now_ms=request.requested_at + 1)
    write_records(target, [erasure_record(again)], keeper)
    [(second,)] = target.query(
        "SELECT changed FROM plug_erasure WHERE request_id = ?", (again.request_id,)
    )
    assert set(orjson.loads(second).values()) == {0}
    assert {k: v for k, v in dump(target).items() if k != "plug_erasure"} == {
        k: v for k, v in after.items() if k != "plug_erasure"
    }
    target.close()


def test_a_batch_remembers_an_erasure_it_reads() -> None:
    keeper = personal("keep")
    request = erasure.request(Pseudonyms(KEYS), "acme", fx.C1, now_ms=5)
    record = erasure_record(request)
    batch = Batch(personal=keeper)
    batch.add(EventType.ERASURE_REQUESTED, record.topic, 0, 0, 0, record.key, record.value, [])
    [found] = batch.erasures
    assert found.matches == (fx.C1, request.subject)
    assert keeper.erased() == [Erased("acme", request.subject, request.token, 5, False)]
    assert batch.rows == {}
