"""The AsyncAPI 3.0 document of the ingress, generated from the same Structs as the schemas.

The application it describes is the ingress: it receives Plug's seven webhooks over
HTTPS (one channel per webhook path, payloads from the wire Structs) and sends one
record per webhook to Kafka (one channel per topic, payloads from the event Structs,
with the record key and headers as Kafka bindings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import yaml

from pipeline.events.models import SCHEMA_VERSION
from pipeline.plug import wire
from pipeline.route import deadletter_topic, event_topic, raw_topic
from pipeline.specs.jsonschema import envelope_type
from pipeline.webhooks import EventType, Webhook

_KAFKA_BINDING = "0.5.0"
_HTTP_BINDING = "0.3.0"
_REF = "#/components/schemas/{name}"
FILE_NAME = "asyncapi.yaml"

# The HTTP body of each webhook. Plug's attendance ``chat`` is an object keyed by message
# ID; the ingress keys it by ``ChatKey`` (keys can repeat), which has no JSON schema: here
# it is described as an object of messages.
_ATTENDANCE_WEBHOOK = msgspec.defstruct(
    "AttendanceWebhook",
    [("attendance", wire.AttendanceWire), ("chat", dict[str, wire.MessageWire], {})],
)
_WEBHOOK_BODY: dict[Webhook, type[msgspec.Struct]] = {
    Webhook.FINISH_ATTENDANCE: _ATTENDANCE_WEBHOOK,
    Webhook.START_ATTENDANCE: _ATTENDANCE_WEBHOOK,
    Webhook.RECEIVE_MESSAGE: wire.MessageWire,
    Webhook.SENDING_MESSAGE: wire.DeliveryCallback,
    Webhook.MESSAGE_DELIVERY_ERROR: wire.DeliveryCallback,
    Webhook.MESSAGE_STATUS: wire.MessageStatusCallback,
    Webhook.WHEN_DISCONNECTING: wire.DisconnectedCallback,
}

_KEY = {
    EventType.INSTANCE_DISCONNECTED: "tenant:instanceId, e.g. acme:3B74...; one instance's "
    "events share a partition, in order",
    EventType.ERASURE_REQUESTED: "tenant:subject, e.g. acme:ps:3f2a...; the subject is the "
    "tenant's keyed pseudonym of the phone (never the phone itself), so the compacted topic "
    "keeps one request per customer",
}
# Events no webhook makes: published by a command, with no ``webhook`` header.
_NOT_FROM_A_WEBHOOK = {
    EventType.ERASURE_REQUESTED: "Published by `plug-pipeline forget` (acks=all) to tell every "
    "consumer to erase one customer of one tenant; on a topic compacted and deleted after "
    "the raw archive's retention.",
}
_DEFAULT_KEY = (
    "tenant:phone (the customer's or chat's), e.g. acme:5511999999999; one "
    "conversation's events share a partition, in order"
)


def _camel(text: str) -> str:
    head, *rest = text.replace("-", "_").replace(".", "_").split("_")
    return head + "".join(part.capitalize() for part in rest)


def _header_schema(names: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"type": "object", "required": list(names), "properties": names}


def _event_headers(event_type: EventType) -> dict[str, Any]:
    headers: dict[str, dict[str, Any]] = {
        "event-type": {"type": "string", "const": event_type.value},
        "event-id": {"type": "string", "description": "the envelope's event_id"},
        "schema-version": {"type": "string", "const": str(SCHEMA_VERSION)},
        "tenant": {"type": "string"},
        "webhook": {"type": "string", "enum": [w.value for w in Webhook]},
        "content-type": {"type": "string", "const": "application/json"},
    }
    if event_type in _NOT_FROM_A_WEBHOOK:
        del headers["webhook"]
    return _header_schema(headers)


def _kafka_message(name: str, summary: str, payload: Any, headers: dict[str, Any], key: str) -> Any:
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "headers": headers,
        "payload": payload,
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": key},
                "bindingVersion": _KAFKA_BINDING,
            }
        },
    }


def _drop_discriminators(schema: Any) -> Any:
    """msgspec writes OpenAPI's discriminator object; AsyncAPI's is a plain property name.

    Each content variant already fixes ``kind`` with a ``const``, so nothing is lost.
    """
    if isinstance(schema, dict):
        return {k: _drop_discriminators(v) for k, v in schema.items() if k != "discriminator"}
    if isinstance(schema, list):
        return [_drop_discriminators(v) for v in schema]
    return schema


def asyncapi_document(prefix: str = "plug") -> dict[str, Any]:
    types = [envelope_type(e) for e in EventType] + list(dict.fromkeys(_WEBHOOK_BODY.values()))
    _, components = msgspec.json.schema_components(types, ref_template=_REF)
    schemas = _drop_discriminators(components)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    for event_type in EventType:
        cid = _camel(event_type.value)
        topic = event_topic(prefix, event_type)
        messages[cid] = _kafka_message(
            event_type.value,
            f"One {event_type.value} event: the envelope with its typed data.",
            {"$ref": _REF.format(name=envelope_type(event_type).__name__)},
            _event_headers(event_type),
            _KEY.get(event_type, _DEFAULT_KEY),
        )
        channels[cid] = _kafka_channel(cid, topic)
        if event_type is EventType.ERASURE_REQUESTED:  # ops/plan.py: one request per customer
            channels[cid]["bindings"]["kafka"]["topicConfiguration"] = {
                "cleanup.policy": ["compact", "delete"]
            }
        operations[f"publish{cid[0].upper()}{cid[1:]}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": _NOT_FROM_A_WEBHOOK.get(
                event_type, "After a webhook is decoded and normalised: acks=all, idempotent."
            ),
            "messages": [{"$ref": f"#/channels/{cid}/messages/{cid}"}],
        }

    _raw_channels(prefix, channels, operations, messages, schemas)
    _webhook_channels(channels, operations, messages)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "plug-pipeline",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": _SERVERS,
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": _SECURITY,
        },
    }


def _raw_channels(
    prefix: str,
    channels: dict[str, Any],
    operations: dict[str, Any],
    messages: dict[str, Any],
    schemas: dict[str, Any],
) -> None:
    """``plug.deadletter`` and ``plug.raw``: request bodies verbatim, described by headers."""
    schemas["RawBody"] = {
        "type": "string",
        "format": "binary",
        "description": "The webhook's request body, byte for byte (it may not be JSON).",
    }
    common: dict[str, dict[str, Any]] = {
        "webhook": {"type": "string", "enum": [w.value for w in Webhook]},
        "tenant": {"type": "string"},
        "received-at": {"type": "string", "description": "epoch ms, when the ingress took it"},
        "event-id": {"type": "string"},
    }
    deadletter = _header_schema(
        {
            **common,
            "error-reason": {
                "type": "string",
                "description": "machine-readable, e.g. invalid_json",
            },
            "error-message": {"type": "string"},
        }
    )
    for cid, topic, headers, summary, key in (
        ("deadletter", deadletter_topic(prefix), deadletter,
         "A body the ingress rejected (400), kept for replay once the decoder is fixed.",
         "tenant:{event}, the webhook's URL name"),
        ("raw", raw_topic(prefix), _header_schema(common),
         "Every accepted body, verbatim, keyed like its event: the archive replay reads.",
         _DEFAULT_KEY),
    ):  # fmt: skip
        messages[cid] = {
            **_kafka_message(cid, summary, {"$ref": _REF.format(name="RawBody")}, headers, key),
            "contentType": "application/octet-stream",
        }
        channels[cid] = _kafka_channel(cid, topic)
        operations[f"publish{cid.capitalize()}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/{cid}"}],
        }


def _kafka_channel(cid: str, topic: str) -> dict[str, Any]:
    """The channel of one topic, carrying its one message."""
    return {
        "address": topic,
        "title": topic,
        "servers": [{"$ref": "#/servers/kafka"}],
        "messages": {cid: {"$ref": f"#/components/messages/{cid}"}},
        "bindings": {"kafka": {"topic": topic, "bindingVersion": _KAFKA_BINDING}},
    }


def _webhook_channels(
    channels: dict[str, Any], operations: dict[str, Any], messages: dict[str, Any]
) -> None:
    """The HTTP side: Plug POSTs each webhook to its own path."""
    for webhook, body in _WEBHOOK_BODY.items():
        cid = _camel(webhook.value) + "Webhook"
        messages[cid] = {
            "name": webhook.plug_field,
            "title": f"Plug's {webhook.plug_field} webhook",
            "contentType": "application/json",
            "payload": {"$ref": _REF.format(name=body.__name__)},
            "bindings": {
                "http": {
                    "headers": _header_schema(
                        {"Content-Type": {"type": "string", "enum": ["application/json"]}}
                    ),
                    "bindingVersion": _HTTP_BINDING,
                }
            },
        }
        channels[cid] = {
            "address": f"/webhooks/{webhook.value}",
            "servers": [{"$ref": "#/servers/ingress"}],
            "messages": {cid: {"$ref": f"#/components/messages/{cid}"}},
        }
        operations[f"receive{cid[0].upper()}{cid[1:]}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"Plug calls this URL for {webhook.plug_field}.",
            "description": _ANSWERS,
            "security": [{"$ref": "#/components/securitySchemes/tokenQuery"},
                         {"$ref": "#/components/securitySchemes/bearer"}],
            "bindings": {
                "http": {
                    "method": "POST",
                    "query": {"type": "object", "properties": {"token": {"type": "string"}}},
                    "bindingVersion": _HTTP_BINDING,
                }
            },
            "messages": [{"$ref": f"#/channels/{cid}/messages/{cid}"}],
        }  # fmt: skip


_DESCRIPTION = """\
Plug's seven webhooks in, typed events on Kafka out. Every event topic holds one
envelope per webhook call (event_id, event_type, schema_version, tenant, received_at,
data). `schema_version` is the major version: a minor change only adds optional fields,
which older consumers ignore; anything else bumps it (docs/schema-evolution.md).
Topic names carry a configurable prefix (PLUG_PIPELINE_TOPIC_PREFIX, here `plug`).
Read them with the `pipeline.consume` library or `plug-pipeline tail`.
"""

_ANSWERS = """\
200 `{"event_id", "status"}` only once the event is durable (in Kafka with acks=all, or
in the local spool); 400 not JSON or not the webhook's shape (body kept on the dead-letter
topic); 401 missing or wrong token; 413 body over the limit; 415 not JSON; 503 with
Retry-After when the event cannot be made durable now.
"""

_SERVERS = {
    "kafka": {
        "host": "localhost:9092",
        "protocol": "kafka",
        "description": "KAFKA_BOOTSTRAP_SERVERS; SASL and TLS per KAFKA_SECURITY_PROTOCOL and "
        "the other KAFKA_* settings (docs/configuration.md).",
    },
    "ingress": {
        "host": "ingress.example.com",
        "protocol": "https",
        "description": "plug-pipeline serve, behind the public HTTPS URL registered with Plug.",
        "security": [
            {"$ref": "#/components/securitySchemes/tokenQuery"},
            {"$ref": "#/components/securitySchemes/bearer"},
        ],
    },
}

_SECURITY = {
    "tokenQuery": {
        "type": "httpApiKey",
        "name": "token",
        "in": "query",
        "description": "The tenant's token, as register-webhooks writes it into the URLs.",
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "The tenant's token."},
}


class _Dumper(yaml.SafeDumper):
    """Shared sub-objects are written out in full (anchors would only puzzle a reader);
    text of several lines as a literal block, as it reads in the source."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _text)


def render_yaml(doc: dict[str, Any]) -> bytes:
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return text.encode()


def write_asyncapi(out: str | Path, prefix: str = "plug") -> Path:
    path = Path(out) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_yaml(asyncapi_document(prefix)))
    return path
