"""JSON Schemas of every topic's records, generated from the event Structs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from pipeline.events import models
from pipeline.route import deadletter_topic, event_topic
from pipeline.webhooks import EventType

_DATA = models.DATA_OF

_DEADLETTER: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Dead letter",
    "description": (
        "The record value is the rejected request body, byte for byte (it may not be JSON). "
        "Headers: webhook, tenant, received-at (epoch ms), error-reason, error-message, event-id."
    ),
    "x-headers": ["webhook", "tenant", "received-at", "error-reason", "error-message", "event-id"],
}


def envelope_type(event_type: EventType) -> type[msgspec.Struct]:
    name = "".join(part.capitalize() for part in event_type.name.split("_")) + "Envelope"
    return msgspec.defstruct(
        name,
        [
            ("event_id", str),
            ("event_type", str),
            ("schema_version", int),
            ("tenant", str),
            ("received_at", int),
            ("data", _DATA[event_type]),
        ],
        kw_only=True,
    )


def schema_documents(prefix: str = "plug") -> dict[str, dict[str, Any]]:
    """File name -> schema: one per topic, plus the envelope and the dead letter."""
    docs: dict[str, dict[str, Any]] = {}
    for event_type in EventType:
        schema = msgspec.json.schema(envelope_type(event_type))
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = event_topic(prefix, event_type)
        docs[f"{event_topic(prefix, event_type)}.json"] = schema
    envelope = msgspec.json.schema(models.Envelope)
    envelope["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    envelope["title"] = "Envelope (every event topic)"
    docs["envelope.json"] = envelope
    docs[f"{deadletter_topic(prefix)}.json"] = _DEADLETTER
    return docs


def render(doc: dict[str, Any]) -> bytes:
    return msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n"


def write_schemas(out: str | Path, prefix: str = "plug") -> list[Path]:
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in schema_documents(prefix).items():
        path = directory / name
        path.write_bytes(render(doc))
        written.append(path)
    return written
