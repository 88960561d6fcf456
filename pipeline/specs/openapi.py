"""The OpenAPI 3.1 document of the ingress, generated from the code.

Request bodies are Plug's wire Structs (loose: unknown fields ignored), answers are
``Accepted`` or ``Error``; every status the HTTP layer can give is listed with the
``error`` reasons it carries. ``schemas/openapi.yaml`` is this document (a unit test
fails when it is stale); the ingress serves it at ``GET /openapi.json``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import msgspec
import orjson
import yaml

from pipeline.plug import wire
from pipeline.webhooks import Webhook

VERSION = "1"
FILE_NAME = "openapi.yaml"


class Accepted(msgspec.Struct, kw_only=True):
    """The event is durable: in Kafka (``published``) or fsynced in the local spool."""

    event_id: str
    status: Literal["published", "spooled"]


class Error(msgspec.Struct, kw_only=True):
    """Every error answer: a machine-readable reason and a human message."""

    error: str
    detail: str


class AttendanceWebhook(msgspec.Struct):
    """finishAttendance / startAttendance. ``chat`` maps message IDs to messages (a key
    may repeat: the ingress keeps every message, in order)."""

    attendance: wire.AttendanceWire
    chat: dict[str, wire.MessageWire] = {}


_BODIES: dict[Webhook, type[msgspec.Struct]] = {
    # the wire Struct keys ``chat`` by ChatKey (no JSON schema): this one says what it holds
    Webhook.FINISH_ATTENDANCE: AttendanceWebhook,
    Webhook.START_ATTENDANCE: AttendanceWebhook,
    Webhook.RECEIVE_MESSAGE: wire.MessageWire,
    Webhook.SENDING_MESSAGE: wire.DeliveryCallback,
    Webhook.MESSAGE_DELIVERY_ERROR: wire.DeliveryCallback,
    Webhook.MESSAGE_STATUS: wire.MessageStatusCallback,
    Webhook.WHEN_DISCONNECTING: wire.DisconnectedCallback,
}

# The Z-API callback ``type`` a webhook carries when the body names one (any case is taken).
_CALLBACK = {
    Webhook.RECEIVE_MESSAGE: "ReceivedCallback",
    Webhook.SENDING_MESSAGE: "DeliveryCallback",
    Webhook.MESSAGE_DELIVERY_ERROR: "DeliveryCallback",
    Webhook.MESSAGE_STATUS: "MessageStatusCallback",
    Webhook.WHEN_DISCONNECTING: "DisconnectedCallback",
}


def _body_schema(hook: Webhook) -> dict[str, Any]:
    """The wire Struct's schema, plus what the ingress checks beyond the Struct's types."""
    ref = {"$ref": f"#/components/schemas/{_BODIES[hook].__name__}"}
    extra: dict[str, Any] = {}
    if hook in _CALLBACK:
        extra["properties"] = {"type": {"enum": [_CALLBACK[hook], None]}}
    if hook is Webhook.RECEIVE_MESSAGE:
        # the chat's phone is the record key's identity: a message without it is a 400
        extra["required"] = ["phone"]
        extra["properties"]["phone"] = {"type": "string"}
    return {"allOf": [ref, extra]} if extra else ref


# status -> (what it means, the ``error`` reasons it carries)
_ERRORS: dict[int, tuple[str, tuple[str, ...]]] = {
    400: (
        "Not JSON, not the webhook's shape (the body is kept on the dead-letter topic), "
        "a token given twice, or an HTTP message the parser refuses",
        ("invalid_json", "invalid_shape", "bad_request"),
    ),
    401: ("Missing or unknown tenant token; nothing is read", ("unauthorised",)),
    404: ("No such webhook, or no such path", ("unknown_webhook", "not_found")),
    405: (
        "A method the path does not serve (only POST on a webhook path); see Allow",
        ("method_not_allowed",),
    ),
    408: (
        "Headers or body did not arrive within their bound; the connection is closed",
        ("request_timeout",),
    ),
    413: (
        "Body over the limit (refused at once when Content-Length says so), or a record "
        "Kafka will never take (set aside, not retried)",
        ("too_large", "too_large_for_kafka", "refused_by_kafka"),
    ),
    414: ("Query string over its limit", ("uri_too_long",)),
    415: ("Content-Type is not JSON", ("unsupported_media_type",)),
    417: ("An Expect header other than 100-continue", ("expectation_failed",)),
    429: (
        "Over the tenant's rate limit (off unless configured); see Retry-After",
        ("rate_limited",),
    ),
    431: ("Header block over its limit; the connection is closed", ("header_too_large",)),
    503: (
        "The event cannot be made durable now, or the ingress is overloaded: try again "
        "after Retry-After. Never a 200 on failure",
        (
            "broker_unavailable",
            "ack_timeout",
            "overloaded",
            "not_durable",
            "spool_full",
            "spool_unavailable",
            "too_many_connections",
            "internal",
        ),
    ),
}

_RETRY_AFTER = {
    "description": "Seconds to wait before sending again",
    "schema": {"type": "integer", "minimum": 0},
}


def _error_response(status: int) -> dict[str, Any]:
    meaning, reasons = _ERRORS[status]
    response: dict[str, Any] = {
        "description": f"{meaning}. `error` is one of: {', '.join(reasons)}.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status in (429, 503):
        response["headers"] = {"Retry-After": _RETRY_AFTER}
    return response


def _webhook_operation(hook: Webhook) -> dict[str, Any]:
    return {
        "operationId": hook.value.replace("-", "_"),
        "summary": f"Plug's {hook.plug_field} webhook",
        "security": [{"token": []}, {"bearer": []}, {}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _body_schema(hook)}},
        },
        "responses": {
            "200": {
                "description": "Durable: in Kafka with acks=all, or fsynced in the spool",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}
                },
            },
            **{str(status): {"$ref": f"#/components/responses/E{status}"} for status in _ERRORS},
        },
    }


def _status_operation(summary: str, statuses: tuple[int, ...]) -> dict[str, Any]:
    shape = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
    return {
        "get": {
            "summary": summary,
            "responses": {
                str(s): {
                    "description": "ok" if s == 200 else "not so: the body says why",
                    "content": {"application/json": {"schema": shape}},
                }
                for s in statuses
            },
        }
    }


def document() -> dict[str, Any]:
    wire_types = sorted(set(_BODIES.values()), key=lambda t: t.__name__)
    _, components = msgspec.json.schema_components(
        [*wire_types, Accepted, Error], ref_template="#/components/schemas/{name}"
    )
    paths: dict[str, Any] = {
        f"/webhooks/{hook.value}": {"post": _webhook_operation(hook)} for hook in Webhook
    }
    paths["/healthz"] = _status_operation("Liveness", (200, 503))
    paths["/readyz"] = _status_operation(
        "Readiness: Kafka (or the spool) can take events", (200, 503)
    )
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus text format",
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}},
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document",
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "plug-pipeline ingress",
            "version": VERSION,
            "description": (
                "Takes Plug's seven webhooks and answers only once the event is durable. "
                "The token names the tenant: `?token=` (what register-webhooks writes into "
                "the URLs) or `Authorization: Bearer`, once. Without configured tokens every "
                "request is accepted as the default tenant."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {f"E{status}": _error_response(status) for status in _ERRORS},
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "query", "name": "token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


@functools.cache
def document_json() -> bytes:
    return orjson.dumps(document())


def render() -> bytes:
    return yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100).encode()


def write_openapi(out: str | Path) -> Path:
    path = Path(out) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render())
    return path
