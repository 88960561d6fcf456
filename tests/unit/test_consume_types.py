"""The library's types reach its user: mypy --strict checks this file (see pyproject.toml).

``assert_type`` fails type-checking if a type were lost to ``Any``; at run time it only
returns its argument, so the same lines also run as a test.
"""

from __future__ import annotations

from typing import assert_type

from pipeline.consume import AnyEvent, ConsumedEvent, decode_event
from pipeline.events.models import (
    AttendanceFinished,
    Customer,
    Envelope,
    MessageSent,
)
from pipeline.ingest import ingest
from pipeline.webhooks import EventType, Webhook

_BODY = b'{"attendance": {"attendanceNumber": 7, "customer": {"phone": "5511"}}}'


def test_decode_event_is_typed_by_its_event_type() -> None:
    value = ingest(Webhook.FINISH_ATTENDANCE, "acme", _BODY, 1, "plug").value
    event = decode_event(EventType.ATTENDANCE_FINISHED, value)
    assert_type(event, Envelope[AttendanceFinished])
    assert_type(event.data.customer, Customer)
    assert_type(event.data.department, str | None)
    assert event.data.customer.phone == "5511"


def checked_only(value: bytes) -> None:
    """Never called: the overloads' results, for mypy."""
    assert_type(decode_event(EventType.MESSAGE_DELIVERY_FAILED, value), Envelope[MessageSent])
    assert_type(decode_event(EventType.MESSAGE_SENT, value), Envelope[MessageSent])
    some: EventType = EventType.MESSAGE_STATUS
    assert_type(decode_event(some, value), AnyEvent)


def describe(item: ConsumedEvent) -> str:
    """What a consumer loop body sees: the union, narrowed by matching on ``data``."""
    assert_type(item.event, AnyEvent)
    match item.event.data:
        case AttendanceFinished(department=department):
            assert_type(department, str | None)
            return f"finished in {department}"
        case MessageSent(phone=phone):
            assert_type(phone, str)
            return f"sent to {phone}"
    return item.event.event_type


def test_match_narrows_the_data() -> None:
    from pipeline.consume import RawRecord

    value = ingest(Webhook.FINISH_ATTENDANCE, "acme", _BODY, 1, "plug").value
    event = decode_event(EventType.ATTENDANCE_FINISHED, value)
    raw = RawRecord("plug.attendance.finished", 0, 0, 1, None, value, [])
    assert describe(ConsumedEvent(event, EventType.ATTENDANCE_FINISHED, raw)) == "finished in None"
