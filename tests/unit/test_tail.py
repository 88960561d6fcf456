"""tail's pure parts: topic names, summary lines."""

from __future__ import annotations

import pytest

from pipeline.consume.consumed import ConsumedEvent, RawRecord
from pipeline.consume.decode import decode_event, event_type_of_topic
from pipeline.consume.tail import event_types, json_line, summary_line
from pipeline.errors import ConfigError
from pipeline.ingest import ingest
from pipeline.webhooks import EventType, Webhook
from tests.support.payloads import corpus_files


def test_topics_are_named_by_topic_suffix_or_event_type() -> None:
    assert event_types("acme", None) == list(EventType)
    assert event_types("acme", ["acme.message.delivery-failed", "message.status"]) == [
        EventType.MESSAGE_DELIVERY_FAILED,
        EventType.MESSAGE_STATUS,
    ]
    assert event_types("acme", ["message.delivery_failed"]) == [EventType.MESSAGE_DELIVERY_FAILED]
    with pytest.raises(ConfigError, match="not an event topic"):
        event_types("acme", ["acme.raw"])


def test_every_corpus_event_has_a_one_line_summary_and_json_line() -> None:
    files = corpus_files()
    assert files  # a loop over nothing would pass
    for path in files:
        record = ingest(Webhook(path.parent.name), "acme", path.read_bytes(), 1, "plug")
        event_type = event_type_of_topic("plug", record.topic)
        assert event_type is not None
        raw = RawRecord(record.topic, 0, 0, 1, record.key, record.value, record.headers)
        item = ConsumedEvent(decode_event(event_type, record.value), event_type, raw)
        line = summary_line(item)
        assert "\n" not in line
        assert event_type.value in line
        assert json_line(item) == record.value.decode()
