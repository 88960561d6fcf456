"""Event -> (topic, key, headers). Pure."""

from __future__ import annotations

import functools

from pipeline.record import Headers
from pipeline.webhooks import DEADLETTER_SUFFIX, RAW_SUFFIX, EventType, Webhook, topic_name

_JSON = b"application/json"
# Header values computed once: an Enum's ``.value`` is a descriptor call, on every webhook.
_EVENT_TYPE = {e: e.value.encode() for e in EventType}
_WEBHOOK = {w: w.value.encode() for w in Webhook}


@functools.cache  # a few prefixes at most, seven event types
def event_topic(prefix: str, event_type: EventType) -> str:
    return topic_name(prefix, event_type.topic_suffix)


def deadletter_topic(prefix: str) -> str:
    return topic_name(prefix, DEADLETTER_SUFFIX)


@functools.cache
def raw_topic(prefix: str) -> str:
    return topic_name(prefix, RAW_SUFFIX)


def key(tenant: str, identity: str | None) -> bytes:
    """Records of one conversation (or instance) share a key, so a partition keeps their order.

    The tenant is part of it, so two tenants' customers with one phone never share a key.
    """
    return f"{tenant}:{identity or ''}".encode()


def event_headers(
    event_type: EventType, event_id: str, tenant: str, webhook: Webhook | None
) -> Headers:
    """``webhook`` is None for an event no webhook made (an erasure request): no such header."""
    if webhook is None:
        return [
            ("event-type", _EVENT_TYPE[event_type]),
            ("event-id", event_id.encode()),
            ("schema-version", b"1"),
            ("tenant", tenant.encode()),
            ("content-type", _JSON),
        ]
    return [
        ("event-type", _EVENT_TYPE[event_type]),
        ("event-id", event_id.encode()),
        ("schema-version", b"1"),
        ("tenant", tenant.encode()),
        ("webhook", _WEBHOOK[webhook]),
        ("content-type", _JSON),
    ]


def raw_headers(webhook: Webhook, tenant: str, received_at: int, event_id: str) -> Headers:
    return [
        ("webhook", _WEBHOOK[webhook]),
        ("tenant", tenant.encode()),
        ("received-at", str(received_at).encode()),
        ("event-id", event_id.encode()),
    ]


def deadletter_headers(
    webhook: Webhook, tenant: str, received_at: int, reason: str, message: str, event_id: str
) -> Headers:
    return [
        ("webhook", webhook.value.encode()),
        ("tenant", tenant.encode()),
        ("received-at", str(received_at).encode()),
        ("error-reason", reason.encode()),
        ("error-message", message.encode()),
        ("event-id", event_id.encode()),
    ]
