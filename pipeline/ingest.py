"""One webhook body -> one Kafka record: decode, normalise, route. Pure.

``ingest`` is everything between reading the body and handing a record to the
sink. It raises ``Malformed`` for a body that is not JSON or not the shape of
its webhook; ``deadletter`` builds the record that keeps such a body verbatim.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

import msgspec

from pipeline import route
from pipeline.errors import Malformed
from pipeline.events import normalise
from pipeline.events.models import Envelope, EventData
from pipeline.plug import wire
from pipeline.plug.chat import decode_hook
from pipeline.record import Record
from pipeline.webhooks import EventType, Webhook

T = TypeVar("T")


def _decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    # Untyped floats (coordinates, passthrough content) keep every digit as Decimal.
    return msgspec.json.Decoder(kind, float_hook=Decimal, dec_hook=decode_hook)


_MESSAGE = _decoder(wire.MessageWire)
_ATTENDANCE = _decoder(wire.AttendanceWebhook)
_DELIVERY = _decoder(wire.DeliveryCallback)
_STATUS = _decoder(wire.MessageStatusCallback)
_DISCONNECTED = _decoder(wire.DisconnectedCallback)
_ENCODER = msgspec.json.Encoder(decimal_format="number")

# The Z-API callback type each webhook carries, when the body names one.
_CALLBACK_TYPE = {
    Webhook.RECEIVE_MESSAGE: "receivedcallback",
    Webhook.SENDING_MESSAGE: "deliverycallback",
    Webhook.MESSAGE_DELIVERY_ERROR: "deliverycallback",
    Webhook.MESSAGE_STATUS: "messagestatuscallback",
    Webhook.WHEN_DISCONNECTING: "disconnectedcallback",
}


# What the event id hashes between the tenant and the body: NUL, the webhook's name, NUL.
_ID_SEPARATED = {w: b"\x00" + w.value.encode() + b"\x00" for w in Webhook}
_EVENT_TYPE_NAME = {e: e.value for e in EventType}


def event_id(tenant: str, webhook: Webhook, body: bytes) -> str:
    """Deterministic: a redelivered webhook gets the id it had the first time."""
    # SHA-256, cut to 32 hex chars: CPUs with SHA extensions hash it twice as fast as blake2b.
    digest = hashlib.sha256(tenant.encode() + _ID_SEPARATED[webhook])
    digest.update(body)
    return digest.hexdigest()[:32]


def _decode(decoder: msgspec.json.Decoder[T], body: bytes, webhook: Webhook) -> T:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        # Decoding stops at the first fault; a shape error can hide that the body is not JSON.
        _check_json(body)
        raise Malformed(f"not a {webhook.value} webhook: {exc}") from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise Malformed(f"body is not valid JSON: {exc}", reason="invalid_json") from exc
    except RecursionError as exc:
        raise Malformed("body is nested too deeply", reason="invalid_json") from exc
    except ArithmeticError as exc:  # a number beyond what Decimal can hold
        raise Malformed(f"a number is out of range: {exc!r}", reason="invalid_json") from exc


def _check_json(body: bytes) -> None:
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise Malformed(f"body is not valid JSON: {exc}", reason="invalid_json") from exc
    except RecursionError as exc:
        raise Malformed("body is nested too deeply", reason="invalid_json") from exc


def _check_utf8(body: bytes) -> None:
    """JSON is UTF-8; msgspec does not check the strings it skips, so check once here."""
    if not body.isascii():
        try:
            body.decode()
        except UnicodeDecodeError as exc:
            raise Malformed(f"body is not UTF-8: {exc}", reason="invalid_json") from exc


def _check_type(webhook: Webhook, declared: str | None) -> None:
    if declared is not None and declared.lower() != _CALLBACK_TYPE[webhook]:
        raise Malformed(f"a {declared} callback was sent to the {webhook.value} webhook")


def normalised(webhook: Webhook, body: bytes) -> tuple[EventType, str | None, EventData]:
    """Decode and normalise: the event type, the key's identity, the event."""
    _check_utf8(body)
    return _NORMALISERS[webhook](webhook, body)


def _attendance(webhook: Webhook, body: bytes) -> tuple[EventType, str | None, EventData]:
    att = _decode(_ATTENDANCE, body, webhook)
    messages = normalise.transcript(att.chat)
    phone = att.attendance.customer.phone
    if webhook is Webhook.FINISH_ATTENDANCE:
        finished = normalise.attendance_finished(att.attendance, messages)
        return EventType.ATTENDANCE_FINISHED, phone, finished
    started = normalise.attendance_started(att.attendance, messages)
    return EventType.ATTENDANCE_STARTED, phone, started


def _received(webhook: Webhook, body: bytes) -> tuple[EventType, str | None, EventData]:
    msg = _decode(_MESSAGE, body, webhook)
    _check_type(webhook, msg.type)
    if msg.phone is None:
        raise Malformed("a receive-message webhook needs the chat's phone")
    return EventType.MESSAGE_RECEIVED, msg.phone, normalise.message(msg)


def _delivery(webhook: Webhook, body: bytes) -> tuple[EventType, str | None, EventData]:
    delivery = _decode(_DELIVERY, body, webhook)
    _check_type(webhook, delivery.type)
    # A DeliveryCallback with an error is a failure, whichever URL received it.
    failed = delivery.error is not None or webhook is Webhook.MESSAGE_DELIVERY_ERROR
    event_type = EventType.MESSAGE_DELIVERY_FAILED if failed else EventType.MESSAGE_SENT
    return event_type, delivery.phone, normalise.message_sent(delivery)


def _status(webhook: Webhook, body: bytes) -> tuple[EventType, str | None, EventData]:
    callback = _decode(_STATUS, body, webhook)
    _check_type(webhook, callback.type)
    return EventType.MESSAGE_STATUS, callback.phone, normalise.message_status(callback)


def _disconnected(webhook: Webhook, body: bytes) -> tuple[EventType, str | None, EventData]:
    callback = _decode(_DISCONNECTED, body, webhook)
    _check_type(webhook, callback.type)
    event = normalise.instance_disconnected(callback)
    return EventType.INSTANCE_DISCONNECTED, callback.instanceId, event


_NORMALISERS: dict[Webhook, Callable[[Webhook, bytes], tuple[EventType, str | None, EventData]]] = {
    Webhook.FINISH_ATTENDANCE: _attendance,
    Webhook.START_ATTENDANCE: _attendance,
    Webhook.RECEIVE_MESSAGE: _received,
    Webhook.SENDING_MESSAGE: _delivery,
    Webhook.MESSAGE_DELIVERY_ERROR: _delivery,
    Webhook.MESSAGE_STATUS: _status,
    Webhook.WHEN_DISCONNECTING: _disconnected,
}


def ingest(webhook: Webhook, tenant: str, body: bytes, received_at: int, prefix: str) -> Record:
    """The record to publish for one accepted webhook; ``Malformed`` if it can't be read."""
    event_type, identity, data = normalised(webhook, body)
    eid = event_id(tenant, webhook, body)
    envelope = Envelope(
        event_id=eid,
        event_type=_EVENT_TYPE_NAME[event_type],
        tenant=tenant,
        received_at=received_at,
        data=data,
    )
    return Record(
        topic=route.event_topic(prefix, event_type),
        key=route.key(tenant, identity),
        value=_ENCODER.encode(envelope),
        headers=route.event_headers(event_type, eid, tenant, webhook),
        event_id=eid,
    )


def raw(
    webhook: Webhook, tenant: str, body: bytes, received_at: int, prefix: str, event: Record
) -> Record:
    """The accepted body verbatim for ``plug.raw``, keyed like its event, to rebuild topics."""
    return Record(
        topic=route.raw_topic(prefix),
        key=event.key,
        value=body,
        headers=route.raw_headers(webhook, tenant, received_at, event.event_id),
        event_id=event.event_id,
    )


def deadletter(
    webhook: Webhook, tenant: str, body: bytes, received_at: int, prefix: str, error: Malformed
) -> Record:
    """The record that keeps a rejected body verbatim, with why it was rejected."""
    eid = event_id(tenant, webhook, body)
    return Record(
        topic=route.deadletter_topic(prefix),
        key=route.key(tenant, webhook.value),
        value=body,
        headers=route.deadletter_headers(
            webhook, tenant, received_at, error.reason, error.detail[:1000], eid
        ),
        event_id=eid,
    )
