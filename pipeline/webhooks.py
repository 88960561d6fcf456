"""The seven Plug webhooks: their URL names, event types and topics."""

from __future__ import annotations

import enum


class Webhook(enum.Enum):
    """One Plug webhook; the value is the ``{event}`` part of its URL."""

    FINISH_ATTENDANCE = "finish-attendance"
    START_ATTENDANCE = "start-attendance"
    RECEIVE_MESSAGE = "receive-message"
    SENDING_MESSAGE = "sending-message"
    MESSAGE_DELIVERY_ERROR = "message-delivery-error"
    MESSAGE_STATUS = "message-status"
    WHEN_DISCONNECTING = "when-disconnecting"

    # Members equal only themselves, so identity hashes them: Enum's own __hash__ is a
    # Python call, made by every dict keyed by a webhook on every request.
    __hash__ = object.__hash__

    @property
    def plug_field(self) -> str:
        """The field naming this webhook in Plug's update-webhooks body."""
        return _PLUG_FIELDS[self]


_PLUG_FIELDS = {
    Webhook.FINISH_ATTENDANCE: "finishAttendance",
    Webhook.START_ATTENDANCE: "startAttendance",
    Webhook.RECEIVE_MESSAGE: "receiveMessage",
    Webhook.SENDING_MESSAGE: "sendingMessage",
    Webhook.MESSAGE_DELIVERY_ERROR: "messageDeliveryError",
    Webhook.MESSAGE_STATUS: "messageStatus",
    Webhook.WHEN_DISCONNECTING: "whenDisconnecting",
}


class EventType(enum.Enum):
    """Our event types; the value is also the topic suffix's source."""

    ATTENDANCE_FINISHED = "attendance.finished"
    ATTENDANCE_STARTED = "attendance.started"
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERY_FAILED = "message.delivery_failed"
    MESSAGE_STATUS = "message.status"
    INSTANCE_DISCONNECTED = "instance.disconnected"
    # Not from a webhook: ``plug-pipeline forget`` publishes it (pipeline/privacy).
    ERASURE_REQUESTED = "privacy.erasure_requested"

    __hash__ = object.__hash__  # as Webhook's

    @property
    def topic_suffix(self) -> str:
        """Kafka topic names use dashes where event types use underscores."""
        return self.value.replace("_", "-")


# The event types the seven webhooks produce; ERASURE_REQUESTED is ours alone.
WEBHOOK_EVENT_TYPES = frozenset(EventType) - {EventType.ERASURE_REQUESTED}


DEADLETTER_SUFFIX = "deadletter"
RAW_SUFFIX = "raw"


def topic_name(prefix: str, suffix: str) -> str:
    return f"{prefix}.{suffix}" if prefix else suffix


def all_topics(prefix: str) -> list[str]:
    """Every topic the ingress writes to."""
    suffixes = [event_type.topic_suffix for event_type in EventType]
    return [topic_name(prefix, s) for s in [*suffixes, DEADLETTER_SUFFIX, RAW_SUFFIX]]
