"""A decoded event -> the rows it puts in each table. Pure: no Kafka, no database.

Rows are tuples in the column order of ``tables.py``; times stay epoch milliseconds and
``data`` is the event's data as JSON text exactly as it was on the topic (fields this
version does not know included), so a new column can be backfilled by SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.consume.decode import AnyEvent
from pipeline.events.content import Document, Image, Reaction, Text, Video
from pipeline.events.models import (
    AttendanceFinished,
    AttendanceStarted,
    Category,
    InstanceDisconnected,
    Message,
    MessageSent,
    MessageStatus,
)
from pipeline.warehouse import tables as t
from pipeline.webhooks import EventType

Row = tuple[Any, ...]
TableRows = Iterator[tuple[t.Table, Row]]


def text_of(message: Message) -> str | None:
    """The words a person would read: a text's body, a caption, a title, an emoji."""
    content = message.content
    if isinstance(content, Text):
        return content.message
    if isinstance(content, Image | Video):
        return content.caption
    if isinstance(content, Document):
        return content.title or content.file_name
    if isinstance(content, Reaction):
        return content.emoji
    return None


def kind_of(message: Message) -> str:
    return message.content.__struct_config__.tag or "unknown"  # type: ignore[return-value]


def event_rows(event: AnyEvent, data_json: str) -> TableRows:
    """Every row one event writes: its own, then its children."""
    data = event.data
    head = (event.event_id, event.tenant, event.received_at)
    if isinstance(data, AttendanceFinished):
        yield (
            t.ATTENDANCE_FINISHED,
            (
                *head,
                str(data.attendance_number),
                data.status,
                data.customer.name,
                data.customer.phone,
                data.department,
                data.finished_by,
                data.operator_report,
                data.rating_observation,
                data.request_time,
                data.start_time,
                data.end_time,
                data_json,
            ),
        )
        yield from _transcript(event.event_id, event.event_type, event.tenant, data.messages)
        yield from _categories(event.event_id, event.tenant, data.categories)
    elif isinstance(data, AttendanceStarted):
        yield (
            t.ATTENDANCE_STARTED,
            (
                *head,
                str(data.attendance_number),
                data.status,
                data.customer.name,
                data.customer.phone,
                data.department,
                data.operator,
                data.moment,
                data.start_time,
                data_json,
            ),
        )
        yield from _transcript(event.event_id, event.event_type, event.tenant, data.messages)
    elif isinstance(data, Message):
        yield (
            t.MESSAGE_RECEIVED,
            (
                *head,
                data.message_id,
                data.phone,
                data.moment,
                data.from_me,
                data.status,
                kind_of(data),
                text_of(data),
                data.is_group,
                data.instance_id,
                data.reference_message_id,
                data.chat_name,
                data.sender_name,
                data_json,
            ),
        )
    elif isinstance(data, MessageSent):
        sent = (data.message_id, data.zaap_id, data.phone, data.instance_id, data.moment)
        if event.event_type == EventType.MESSAGE_DELIVERY_FAILED.value:
            yield (
                t.MESSAGE_DELIVERY_FAILED,
                (
                    *head,
                    *sent,
                    data.error,
                    data.error_code,
                    data_json,
                ),
            )
        else:
            yield t.MESSAGE_SENT, (*head, *sent, data_json)
    elif isinstance(data, MessageStatus):
        rest = (data.status, data.phone, data.instance_id, data.moment, data.is_group, data_json)
        for position, message_id in enumerate(data.message_ids or [None]):
            yield t.MESSAGE_STATUS, (*head, position, message_id, *rest)
    elif isinstance(data, InstanceDisconnected):
        yield (
            t.INSTANCE_DISCONNECTED,
            (
                *head,
                data.instance_id,
                data.disconnected,
                data.moment,
                data.error,
                data_json,
            ),
        )
    else:  # pragma: no cover - the union is closed; a new event type needs a table first
        raise TypeError(f"no table for {type(data).__name__}")


def _transcript(event_id: str, event_type: str, tenant: str, messages: list[Message]) -> TableRows:
    for position, m in enumerate(messages):
        yield (
            t.ATTENDANCE_MESSAGE,
            (
                event_id,
                position,
                event_type,
                tenant,
                m.message_id,
                m.moment,
                m.from_me,
                m.is_automatic,
                m.status,
                kind_of(m),
                text_of(m),
                m.sender_name,
                m.participant_phone,
            ),
        )


def _categories(event_id: str, tenant: str, categories: list[Category]) -> TableRows:
    for position, c in enumerate(categories):
        yield (
            t.ATTENDANCE_CATEGORY,
            (
                event_id,
                position,
                tenant,
                c.category_id,
                c.category_name,
                c.color,
                c.item_id,
                c.item_name,
            ),
        )


def _header(headers: dict[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("utf-8", "replace")


def _epoch_ms(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def deadletter_row(partition: int, offset: int, headers: dict[str, bytes], body: bytes) -> Row:
    """A dead letter: the rejected body verbatim, with what the ingress said of it."""
    return (
        partition,
        offset,
        _header(headers, "event-id"),
        _header(headers, "tenant"),
        _header(headers, "webhook"),
        _header(headers, "error-reason"),
        _header(headers, "error-message"),
        _epoch_ms(_header(headers, "received-at")),
        body,
    )


def raw_row(partition: int, offset: int, headers: dict[str, bytes], body: bytes) -> Row:
    return (
        partition,
        offset,
        _header(headers, "event-id"),
        _header(headers, "tenant"),
        _header(headers, "webhook"),
        _epoch_ms(_header(headers, "received-at")),
        body,
    )


def load_error_row(
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    error: str,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
) -> Row:
    return (topic, partition, offset, reason, error, timestamp_ms, key, value)
