"""The erasure requests' topic: planned compacted, described in AsyncAPI, shown by tail,
and never written from a webhook."""

from __future__ import annotations

import msgspec

from pipeline.config import Config
from pipeline.consume.consumed import ConsumedEvent, RawRecord
from pipeline.consume.decode import decode_event
from pipeline.consume.tail import json_line, summary_line
from pipeline.errors import Malformed
from pipeline.events.models import Envelope
from pipeline.ingest import ingest
from pipeline.ops.plan import DAY_MS, plan
from pipeline.privacy.erasure import request
from pipeline.privacy.subject import Pseudonyms
from pipeline.route import event_headers
from pipeline.simulate.generator import Generator
from pipeline.specs.asyncapi import asyncapi_document
from pipeline.webhooks import EventType, Webhook
from tests.support.payloads import corpus_files

PHONE = "5511987654321"
TOPIC = "p.privacy.erasure-requested"


def test_the_erasure_topic_is_compacted_and_deleted_after_the_raw_archive_retention() -> None:
    config = Config(topic_prefix="p", retention_days=3, raw_retention_days=45)
    planned = {t.name: t.configs for t in plan(config, brokers=1)}
    assert planned[TOPIC]["cleanup.policy"] == "compact,delete"
    assert int(planned[TOPIC]["retention.ms"]) == int(planned["p.raw"]["retention.ms"])
    assert int(planned[TOPIC]["retention.ms"]) == 45 * DAY_MS
    others = {name: c["cleanup.policy"] for name, c in planned.items() if name != TOPIC}
    assert set(others.values()) == {"delete"}
    assert len(others) == len(EventType) + 1  # every other event topic, raw, dead letters


def test_asyncapi_keys_erasures_by_subject_and_gives_them_no_webhook_header() -> None:
    doc = asyncapi_document("plug")
    message = doc["components"]["messages"]["privacyErasureRequested"]
    key = message["bindings"]["kafka"]["key"]["description"]
    assert key.startswith("tenant:subject")
    headers = message["headers"]
    assert "webhook" not in headers["properties"]
    assert "webhook" not in headers["required"]
    assert headers["properties"]["event-type"]["const"] == "privacy.erasure_requested"
    channel = doc["channels"]["privacyErasureRequested"]
    assert channel["address"] == "plug.privacy.erasure-requested"
    assert channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] == [
        "compact",
        "delete",
    ]
    # The webhooks' events keep their header and their conversation key.
    received = doc["components"]["messages"]["messageReceived"]
    assert "webhook" in received["headers"]["required"]
    assert received["bindings"]["kafka"]["key"]["description"].endswith("in order")


def test_event_headers_without_a_webhook_have_no_webhook_header() -> None:
    headers = dict(event_headers(EventType.ERASURE_REQUESTED, "r1", "acme", None))
    assert headers == {
        "event-type": b"privacy.erasure_requested",
        "event-id": b"r1",
        "schema-version": b"1",
        "tenant": b"acme",
        "content-type": b"application/json",
    }
    with_hook = dict(event_headers(EventType.MESSAGE_SENT, "e1", "acme", Webhook.SENDING_MESSAGE))
    assert with_hook["webhook"] == b"sending-message"


def _consumed(value: bytes) -> ConsumedEvent:
    event = decode_event(EventType.ERASURE_REQUESTED, value)
    record = RawRecord(
        topic=TOPIC, partition=0, offset=7, timestamp=1, key=b"acme:x", value=value, headers=[]
    )
    return ConsumedEvent(event_type=EventType.ERASURE_REQUESTED, event=event, record=record)


def test_tail_shows_an_erasure_by_its_subject_and_never_its_phone_in_a_summary() -> None:
    erasure = request(Pseudonyms({"acme": ("k",)}), "acme", "+55 (11) 98765-4321", "asked")
    envelope = Envelope(
        event_id=erasure.request_id,
        event_type=EventType.ERASURE_REQUESTED.value,
        tenant="acme",
        received_at=erasure.requested_at,
        data=erasure,
    )
    value = msgspec.json.encode(envelope)
    item = _consumed(value)
    line = summary_line(item)
    assert "privacy.erasure_requested" in line
    assert erasure.subject in line
    assert erasure.request_id in line
    assert PHONE not in line
    assert json_line(item) == value.decode()  # the JSON lines are the envelope as written


def test_no_webhook_ever_makes_an_erasure_request() -> None:
    """Not from Plug's payloads under any webhook's URL, nor from simulated traffic."""
    bodies = [p.read_bytes() for p in corpus_files()]
    topics: set[str] = set()
    for webhook in Webhook:  # every body at every URL: a wrong one is refused, never routed
        for body in bodies:
            try:
                topics.add(ingest(webhook, "acme", body, 1, "p").topic)
            except Malformed:
                continue
    for webhook, body in Generator(seed=5).take(2000):
        topics.add(ingest(webhook, "acme", body, 1, "p").topic)
    assert len(topics) == len(EventType) - 1
    assert TOPIC not in topics
