"""Event -> (topic, key, headers). Pure."""

from __future__ import annotations

from pipeline.record import Headers
from pipeline.webhooks import DEADLETTER_SUFFIX, RAW_SUFFIX, EventType, Webhook, topic_name

_JSON = b"application/json"


def event_topic(prefix: str, event_type: EventType) -> str:
    return topic_name(prefix, event_type.topic_suffix)


def deadletter_topic(prefix: str) -> str:
    return topic_name(prefix, DEADLETTER_SUFFIX)


def raw_topic(prefix: str) -> str:
    return topic_name(prefix, RAW_SUFFIX)


def key(tenant: str, identity: str | None) -> bytes:
    """Records of one conversation (or instance) share a key, so a partition keeps their order.

    The tenant is part of it, so two tenants' customers with one phone never share a key.
    """
    return f"{tenant}:{identity or ''}".encode()


def event_headers(event_type: EventType, event_id: str, tenant: str, webhook: Webhook) -> Headers:
    return [
        ("event-type", event_type.value.encode()),
        ("event-id", event_id.encode()),
        ("schema-version", b"1"),
        ("tenant", tenant.encode()),
        ("webhook", webhook.value.encode()),
        ("content-type", _JSON),
    ]


def raw_headers(webhook: Webhook, tenant: str, received_at: int, event_id: str) -> Headers:
    return [
        ("webhook", webhook.value.encode()),
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
