"""Record bytes -> typed envelopes, by event type. Pure: no Kafka here.

One decoder per event type, built once at import, decodes into the same Structs the
ingress encodes from, so producer and consumer share one source of truth. Decoding is
forward compatible within a major ``schema_version``: unknown fields are ignored. A
record that is not an envelope of its event type, or carries a ``schema_version`` this
library does not know, raises ``UndecodableRecord``; it is never guessed at.
"""

from __future__ import annotations

from functools import cache
from typing import Literal, TypeAlias, overload

import msgspec

from pipeline.errors import UndecodableRecord
from pipeline.events.models import (
    DATA_OF,
    SCHEMA_VERSION,
    AttendanceFinished,
    AttendanceStarted,
    Envelope,
    ErasureRequested,
    InstanceDisconnected,
    Message,
    MessageSent,
    MessageStatus,
)
from pipeline.webhooks import EventType, topic_name

AnyEvent: TypeAlias = (
    Envelope[AttendanceFinished]
    | Envelope[AttendanceStarted]
    | Envelope[Message]
    | Envelope[MessageSent]
    | Envelope[MessageStatus]
    | Envelope[InstanceDisconnected]
    | Envelope[ErasureRequested]
)

# The majors this library decodes. A minor (additive) change keeps the number; see
# docs/schema-evolution.md.
KNOWN_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})

_DATA = DATA_OF

_DECODERS: dict[EventType, msgspec.json.Decoder[AnyEvent]] = {
    event_type: msgspec.json.Decoder(Envelope[data])  # type: ignore[valid-type]
    for event_type, data in _DATA.items()
}


class _Version(msgspec.Struct):
    """Just enough of an envelope to say which major wrote it."""

    schema_version: int | str | None = None


_VERSION = msgspec.json.Decoder(_Version)


def data_type(event_type: EventType) -> type[msgspec.Struct]:
    """The Struct of ``data`` for an event type."""
    return _DATA[event_type]


@overload
def decode_event(
    event_type: Literal[EventType.ATTENDANCE_FINISHED], value: bytes
) -> Envelope[AttendanceFinished]: ...
@overload
def decode_event(
    event_type: Literal[EventType.ATTENDANCE_STARTED], value: bytes
) -> Envelope[AttendanceStarted]: ...
@overload
def decode_event(
    event_type: Literal[EventType.MESSAGE_RECEIVED], value: bytes
) -> Envelope[Message]: ...
@overload
def decode_event(
    event_type: Literal[EventType.MESSAGE_SENT, EventType.MESSAGE_DELIVERY_FAILED], value: bytes
) -> Envelope[MessageSent]: ...
@overload
def decode_event(
    event_type: Literal[EventType.MESSAGE_STATUS], value: bytes
) -> Envelope[MessageStatus]: ...
@overload
def decode_event(
    event_type: Literal[EventType.INSTANCE_DISCONNECTED], value: bytes
) -> Envelope[InstanceDisconnected]: ...
@overload
def decode_event(event_type: EventType, value: bytes) -> AnyEvent: ...
def decode_event(event_type: EventType, value: bytes) -> AnyEvent:
    """Decode one record value as an envelope of ``event_type``.

    Raises ``UndecodableRecord`` with ``reason`` ``unknown_schema_version`` (a major this
    library does not know), ``wrong_event_type`` (the envelope says another type), or
    ``invalid_envelope`` (not JSON, or not that shape).
    """
    try:
        event = _DECODERS[event_type].decode(value)
    except msgspec.DecodeError as exc:
        # A future major may have changed the shape: say so rather than "invalid".
        _check_version(_peek_version(value))
        raise UndecodableRecord(
            "invalid_envelope", f"not a {event_type.value} envelope: {exc}"
        ) from exc
    _check_version(event.schema_version)
    if event.event_type != event_type.value:
        raise UndecodableRecord(
            "wrong_event_type",
            f"expected event_type {event_type.value!r}, the envelope says {event.event_type!r}",
        )
    return event


def _peek_version(value: bytes) -> int | str | None:
    try:
        return _VERSION.decode(value).schema_version
    except msgspec.DecodeError:
        return None


def _check_version(version: int | str | None) -> None:
    if version is None or version in KNOWN_SCHEMA_VERSIONS:
        return
    known = ", ".join(str(v) for v in sorted(KNOWN_SCHEMA_VERSIONS))
    raise UndecodableRecord(
        "unknown_schema_version",
        f"schema_version {version!r} is not one this library decodes ({known}): upgrade it",
    )


@cache
def _topics(prefix: str) -> dict[str, EventType]:
    return {topic_name(prefix, e.topic_suffix): e for e in EventType}


def event_type_of_topic(prefix: str, topic: str) -> EventType | None:
    """The event type whose records ``topic`` holds under ``prefix``, or None."""
    return _topics(prefix).get(topic)


_BY_VALUE = {e.value.encode(): e for e in EventType}


def event_type_of_header(value: bytes | None) -> EventType | None:
    """The event type an ``event-type`` header names, or None."""
    return None if value is None else _BY_VALUE.get(value)
