"""docs/schema-evolution.md, rule by rule, on a real record of each topic."""

from __future__ import annotations

import json
from typing import Any, get_args

import msgspec
import pytest

from pipeline.consume.decode import KNOWN_SCHEMA_VERSIONS, decode_event
from pipeline.errors import UndecodableRecord
from pipeline.events.content import AnyContent
from pipeline.events.models import SCHEMA_VERSION, Envelope, MessageSent
from pipeline.ingest import ingest
from pipeline.webhooks import EventType, Webhook
from tests.support.payloads import fixture_bytes


def _doc(webhook: Webhook, fixture: str) -> dict[str, Any]:
    value = ingest(webhook, "acme", fixture_bytes(fixture), 1, "plug").value
    doc: dict[str, Any] = json.loads(value)
    return doc


def _sent() -> dict[str, Any]:
    return _doc(Webhook.SENDING_MESSAGE, "sending-message/delivery.json")


def _received() -> dict[str, Any]:
    return _doc(Webhook.RECEIVE_MESSAGE, "receive-message/text.json")


def test_version_one_is_the_only_major_known() -> None:
    assert SCHEMA_VERSION == 1
    assert frozenset({1}) == KNOWN_SCHEMA_VERSIONS


def test_minor_fields_added_anywhere_are_ignored_by_older_consumers() -> None:
    doc = _received()
    doc["partition_hint"] = 3
    doc["data"]["edited_at"] = 1_700_000_000_000
    doc["data"]["content"]["language"] = "pt"
    event = decode_event(EventType.MESSAGE_RECEIVED, json.dumps(doc).encode())
    assert (
        event.data.content
        == decode_event(EventType.MESSAGE_RECEIVED, json.dumps(_received()).encode()).data.content
    )


def test_minor_fields_with_a_default_decode_older_records() -> None:
    """A newer consumer whose Struct gained a field reads today's records."""

    class NextMessageSent(MessageSent, kw_only=True):
        retry_count: int = 0

    event = msgspec.json.decode(json.dumps(_sent()).encode(), type=Envelope[NextMessageSent])
    assert event.data.retry_count == 0
    assert event.data.phone == _sent()["data"]["phone"]


def test_a_new_field_without_a_default_would_break_older_records() -> None:
    """Why the rule demands a default: without one, today's records stop decoding."""

    class Broken(MessageSent, kw_only=True):
        retry_count: int

    with pytest.raises(msgspec.ValidationError, match="retry_count"):
        msgspec.json.decode(json.dumps(_sent()).encode(), type=Envelope[Broken])


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d["data"].pop("phone"), id="removed"),
        pytest.param(lambda d: d["data"].update(phone=5511), id="type changed"),
        pytest.param(lambda d: d["data"].update(phone=None), id="non-null made null"),
    ],
)
def test_major_changes_are_not_decoded_as_version_one(change: Any) -> None:
    doc = _sent()
    change(doc)
    with pytest.raises(UndecodableRecord) as info:
        decode_event(EventType.MESSAGE_SENT, json.dumps(doc).encode())
    assert info.value.reason == "invalid_envelope"


def test_a_new_content_kind_is_a_major_change() -> None:
    doc = _received()
    doc["data"]["content"] = {"kind": "hologram", "url": "x"}
    with pytest.raises(UndecodableRecord):
        decode_event(EventType.MESSAGE_RECEIVED, json.dumps(doc).encode())
    assert "hologram" not in {t.__struct_config__.tag for t in get_args(AnyContent)}


def test_a_major_the_library_does_not_know_is_reported_not_mis_decoded() -> None:
    doc = _sent()
    doc["schema_version"] = SCHEMA_VERSION + 1  # same shape: still refused
    with pytest.raises(UndecodableRecord) as info:
        decode_event(EventType.MESSAGE_SENT, json.dumps(doc).encode())
    assert info.value.reason == "unknown_schema_version"
    assert "upgrade" in str(info.value)
