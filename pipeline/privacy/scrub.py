"""An event with its customer's personal fields blanked or replaced. Pure.

What stays is what the KPI views count and time: ids, moments, statuses, flags, the kind
of a message's content and its non-identifying facts (a mime type, an audio's seconds),
departments, categories, the operator who worked the attendance. What goes is what
identifies or describes the customer: names, photos, texts, captions, media links,
locations, contacts' cards, WhatsApp's LIDs, the free text of an operator's report and
of a rating. Phone numbers go through ``phone``: ``None`` drops them, a pseudonym or an
erasure token replaces them, so distinct customers and recontacts still count.

Operators' names stay: they are the contact centre's own staff, whose data the centre
holds under the employment relation, and the per-operator KPIs need them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from msgspec import structs

from pipeline.events import content as c
from pipeline.events.models import (
    AttendanceFinished,
    AttendanceStarted,
    Customer,
    EventData,
    InstanceDisconnected,
    Message,
    MessageSent,
    MessageStatus,
)

Phone = Callable[[str], str | None]
E = TypeVar("E", bound=EventData)


def scrub(data: E, phone: Phone) -> E:
    """``data`` with every personal field of its customer blanked, phones through ``phone``."""
    result: EventData
    if isinstance(data, Message):
        result = scrub_message(data, phone)
    elif isinstance(data, AttendanceFinished):
        result = structs.replace(
            data,
            customer=_customer(data.customer, phone),
            operator_report=None,
            rating_observation=None,
            messages=[scrub_message(m, phone) for m in data.messages],
        )
    elif isinstance(data, AttendanceStarted):
        result = structs.replace(
            data,
            customer=_customer(data.customer, phone),
            messages=[scrub_message(m, phone) for m in data.messages],
        )
    elif isinstance(data, MessageSent | MessageStatus):
        result = structs.replace(data, phone=_phone(data.phone, phone))
    elif isinstance(data, InstanceDisconnected):
        result = data  # the centre's own WhatsApp number, no customer in it
    else:  # pragma: no cover - EventData is closed
        raise TypeError(f"not an event: {type(data).__name__}")
    return result  # type: ignore[return-value]  # each branch keeps the type it was given


def _phone(value: str | None, phone: Phone) -> str | None:
    return None if value is None else phone(value)


def _customer(customer: Customer, phone: Phone) -> Customer:
    return Customer(name=None, phone=_phone(customer.phone, phone))


def scrub_message(m: Message, phone: Phone) -> Message:
    return structs.replace(
        m,
        phone=_phone(m.phone, phone),
        chat_name=None,
        sender_name=None,
        sender_photo=None,
        photo=None,
        sender_lid=None,
        chat_lid=None,
        participant_phone=_phone(m.participant_phone, phone),
        participant_lid=None,
        external_ad=None,
        notification_parameters=[],
        profile_name=None,
        updated_photo=None,
        broadcast_recipients=[p for r in m.broadcast_recipients if (p := phone(r)) is not None],
        status_image=None,
        content=scrub_content(m.content, phone),
    )


def scrub_content(content: c.AnyContent, phone: Phone) -> c.AnyContent:
    """The same kind of content with only its non-identifying facts."""
    kept: c.Content
    if isinstance(content, c.Image):
        kept = c.Image(
            mime_type=content.mime_type,
            width=content.width,
            height=content.height,
            view_once=content.view_once,
            download_error=content.download_error,
        )
    elif isinstance(content, c.Audio):
        kept = c.Audio(
            mime_type=content.mime_type,
            voice_note=content.voice_note,
            seconds=content.seconds,
            view_once=content.view_once,
        )
    elif isinstance(content, c.Video):
        kept = c.Video(
            mime_type=content.mime_type, seconds=content.seconds, view_once=content.view_once
        )
    elif isinstance(content, c.Document):
        kept = c.Document(mime_type=content.mime_type, page_count=content.page_count)
    elif isinstance(content, c.Sticker):
        kept = c.Sticker(mime_type=content.mime_type)
    elif isinstance(content, c.Reaction):
        ref = content.referenced_message
        kept = c.Reaction(
            time=content.time,
            referenced_message=None
            if ref is None
            else c.ReferencedMessage(
                message_id=ref.message_id,
                from_me=ref.from_me,
                phone=_phone(ref.phone, phone),
                participant=_phone(ref.participant, phone),
            ),
        )
    elif isinstance(content, c.Notification):
        kept = c.Notification(name=content.name)  # the notice's type ("call", "group_add")
    elif isinstance(content, c.Passthrough):
        kept = type(content)()
    else:  # text, location, contact: all of it describes the customer; waiting, unknown
        kept = type(content)()
    return kept
