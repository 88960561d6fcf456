"""decode_event: typed envelopes from record bytes; every failure named, never guessed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.consume.decode import (
    data_type,
    decode_event,
    event_type_of_header,
    event_type_of_topic,
)
from pipeline.errors import PipelineError, UndecodableRecord
from pipeline.events.models import AttendanceFinished, Envelope, MessageSent
from pipeline.ingest import ingest
from pipeline.webhooks import EventType, Webhook
from tests.support.payloads import corpus_files, fixture_bytes


def _record_value(webhook: Webhook, fixture: str) -> bytes:
    return ingest(webhook, "acme", fixture_bytes(fixture), 1_700_000_000_000, "plug").value


def _finished() -> dict[str, Any]:
    value = _record_value(Webhook.FINISH_ATTENDANCE, "finish-attendance/category-list.json")
    parsed: dict[str, Any] = json.loads(value)
    return parsed


def test_every_corpus_record_decodes_typed_by_its_topic() -> None:
    files = corpus_files()
    assert files  # a loop over nothing would pass
    for path in files:
        record = ingest(Webhook(path.parent.name), "acme", path.read_bytes(), 1, "plug")
        event_type = event_type_of_topic("plug", record.topic)
        assert event_type is not None, record.topic
        event = decode_event(event_type, record.value)
        assert isinstance(event.data, data_type(event_type))
        assert event.event_id == record.event_id
        assert event.event_type == event_type.value
        assert event.tenant == "acme"


def test_decoded_data_is_the_struct_not_a_dict() -> None:
    raw = _record_value(Webhook.FINISH_ATTENDANCE, "finish-attendance/category-list.json")
    event: Envelope[AttendanceFinished] = decode_event(EventType.ATTENDANCE_FINISHED, raw)
    assert isinstance(event.data, AttendanceFinished)
    assert event.data.categories, "the fixture has categories"
    assert event.data.customer.phone is not None


def test_unknown_extra_fields_decode() -> None:
    """A newer minor version adds fields anywhere: older consumers still decode."""
    doc = _finished()
    doc["trace_id"] = "abc"
    doc["data"]["sla_breached"] = True
    doc["data"]["customer"]["email"] = "x@example.com"
    doc["data"]["categories"][0]["parent_id"] = "p1"
    event = decode_event(EventType.ATTENDANCE_FINISHED, json.dumps(doc).encode())
    assert event.data.customer.phone == _finished()["data"]["customer"]["phone"]
    assert not hasattr(event.data, "sla_breached")


@pytest.mark.parametrize("version", [2, 99])
def test_an_unknown_major_version_is_reported_even_when_the_shape_fits(version: int) -> None:
    doc = _finished()
    doc["schema_version"] = version
    with pytest.raises(UndecodableRecord) as info:
        decode_event(EventType.ATTENDANCE_FINISHED, json.dumps(doc).encode())
    assert info.value.reason == "unknown_schema_version"
    assert str(version) in str(info.value)


def test_an_unknown_major_with_a_new_shape_is_reported_as_such_not_as_invalid() -> None:
    doc = {"event_id": "e", "schema_version": 2, "payload": {"attendance": {}}}
    with pytest.raises(UndecodableRecord) as info:
        decode_event(EventType.ATTENDANCE_FINISHED, json.dumps(doc).encode())
    assert info.value.reason == "unknown_schema_version"


@pytest.mark.parametrize(
    "value",
    [b"", b"not json", b"[1, 2]", b'{"event_id": "x"}', "\ufffd".encode() * 3, b"\xff\xfe"],
)
def test_bytes_that_are_not_an_envelope_are_undecodable(value: bytes) -> None:
    with pytest.raises(UndecodableRecord) as info:
        decode_event(EventType.MESSAGE_RECEIVED, value)
    assert info.value.reason == "invalid_envelope"
    assert isinstance(info.value, PipelineError)
    assert "message.received" in str(info.value)


def test_an_envelope_of_another_type_is_not_decoded_as_this_one() -> None:
    sent = _record_value(Webhook.SENDING_MESSAGE, "sending-message/delivery.json")
    # MessageSent's data happens to fit a delivery failure: only event_type tells them apart.
    with pytest.raises(UndecodableRecord) as info:
        decode_event(EventType.MESSAGE_DELIVERY_FAILED, sent)
    assert info.value.reason == "wrong_event_type"
    event = decode_event(EventType.MESSAGE_SENT, sent)
    assert isinstance(event.data, MessageSent)


def test_located_error_names_topic_partition_and_offset() -> None:
    error = UndecodableRecord("invalid_envelope", "bad").at("plug.message.status", 3, 42)
    assert (error.topic, error.partition, error.offset) == ("plug.message.status", 3, 42)
    assert str(error) == "plug.message.status[3]@42: bad"
    assert error.reason == "invalid_envelope"


def test_event_type_of_topic_honours_the_prefix() -> None:
    assert event_type_of_topic("plug", "plug.message.delivery-failed") is (
        EventType.MESSAGE_DELIVERY_FAILED
    )
    assert event_type_of_topic("acme", "acme.attendance.started") is EventType.ATTENDANCE_STARTED
    assert event_type_of_topic("", "instance.disconnected") is EventType.INSTANCE_DISCONNECTED
    assert event_type_of_topic("plug", "acme.attendance.started") is None
    assert event_type_of_topic("plug", "plug.deadletter") is None
    assert event_type_of_topic("plug", "plug.raw") is None


def test_event_type_of_header() -> None:
    assert event_type_of_header(b"message.status") is EventType.MESSAGE_STATUS
    assert event_type_of_header(b"message.delivery_failed") is EventType.MESSAGE_DELIVERY_FAILED
    assert event_type_of_header(b"message-status") is None
    assert event_type_of_header(None) is None
