"""The committed schemas/ are what the code generates, and records follow them."""

from __future__ import annotations

from pathlib import Path

import msgspec
import yaml

from pipeline.events.models import AttendanceFinished
from pipeline.ingest import ingest
from pipeline.specs.asyncapi import asyncapi_document, render_yaml
from pipeline.specs.jsonschema import render, schema_documents, write_schemas
from pipeline.webhooks import EventType, Webhook, all_topics
from tests.support.payloads import corpus_files

COMMITTED = Path(__file__).parents[2] / "schemas"


def test_committed_schemas_match_the_code() -> None:
    expected = {name: render(doc) for name, doc in schema_documents().items()}
    committed = {p.name: p.read_bytes() for p in COMMITTED.glob("*.json")}
    assert expected
    assert committed
    stale = sorted(
        n for n in expected.keys() | committed.keys() if expected.get(n) != committed.get(n)
    )
    assert stale == [], "run `make schemas` and commit schemas/"


def test_committed_asyncapi_document_matches_the_code() -> None:
    expected = render_yaml(asyncapi_document())
    assert (COMMITTED / "asyncapi.yaml").read_bytes() == expected, (
        "run `make schemas` and commit schemas/"
    )


def test_asyncapi_has_a_channel_per_topic_and_per_webhook_from_the_structs() -> None:
    doc = yaml.safe_load(render_yaml(asyncapi_document("acme")))
    addresses = {c["address"] for c in doc["channels"].values()}
    assert set(all_topics("acme")) <= addresses
    assert {f"/webhooks/{w.value}" for w in Webhook} <= addresses
    assert len(addresses) == len(all_topics("acme")) + len(Webhook)
    schemas = doc["components"]["schemas"]
    finished = schemas["AttendanceFinished"]["properties"]
    assert set(finished) == set(AttendanceFinished.__struct_fields__)
    message = doc["components"]["messages"]["attendanceFinished"]
    assert message["payload"] == {"$ref": "#/components/schemas/AttendanceFinishedEnvelope"}
    assert message["headers"]["properties"]["event-type"]["const"] == "attendance.finished"
    assert "tenant:phone" in message["bindings"]["kafka"]["key"]["description"]


def test_write_schemas_writes_one_file_per_topic(tmp_path: Path) -> None:
    names = sorted(p.name for p in write_schemas(tmp_path))
    assert "plug.deadletter.json" in names
    assert "envelope.json" in names
    assert len(names) == len(EventType) + 2  # each event topic, the dead letters, the envelope


def test_every_topic_schema_names_its_data_fields() -> None:
    docs = schema_documents()
    finished = docs["plug.attendance.finished.json"]["$defs"]["AttendanceFinished"]
    assert {"operator_report", "department", "categories", "messages"} <= set(
        finished["properties"]
    )


def test_corpus_records_round_trip_through_their_envelope_types() -> None:
    """Each record decodes strictly as its topic's envelope: the schema is the truth."""
    from pipeline.specs.jsonschema import envelope_type
    from pipeline.webhooks import EventType

    by_topic = {f"plug.{e.topic_suffix}": envelope_type(e) for e in EventType}
    files = corpus_files()
    assert files  # a loop over nothing would pass
    for path in files:
        record = ingest(Webhook(path.parent.name), "t", path.read_bytes(), 1, "plug")
        msgspec.json.decode(record.value, type=by_topic[record.topic])
