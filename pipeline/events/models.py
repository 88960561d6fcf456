"""Our normalised events: snake_case, times in epoch ms, absent -> null, lists never null."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct

from pipeline.events.content import AnyContent, Image

SCHEMA_VERSION = 1


class Message(Struct, kw_only=True):
    """One chat message: ``message.received``'s data and each transcript entry."""

    message_id: str | None
    moment: int | None
    phone: str | None
    chat_name: str | None = None
    sender_name: str | None = None
    sender_photo: str | None = None
    photo: str | None = None
    from_me: bool | None = None
    status: str | None = None
    is_group: bool | None = None
    is_newsletter: bool | None = None
    is_broadcast: bool | None = None
    is_edit: bool | None = None
    is_status_reply: bool | None = None
    is_waiting: bool | None = None
    is_automatic: bool | None = None
    is_forwarded: bool | None = None
    from_api: bool | None = None
    view_once: bool | None = None
    instance_id: str | None = None
    connected_phone: str | None = None
    sender_lid: str | None = None
    chat_lid: str | None = None
    participant_phone: str | None = None
    participant_lid: str | None = None
    reference_message_id: str | None = None
    expiration_seconds: int | None = None
    expires_at: Any = None
    code: Any = None
    external_ad: dict[str, Any] | None = None
    notification: str | None = None
    notification_parameters: list[Any] = msgspec.field(default_factory=list)
    call_id: str | None = None
    request_method: str | None = None
    profile_name: str | None = None
    updated_photo: str | None = None
    link_mode: str | None = None
    broadcast_recipients: list[str] = msgspec.field(default_factory=list)
    status_image: Image | None = None
    content: AnyContent


class Customer(Struct, kw_only=True):
    name: str | None = None
    phone: str | None = None


class Category(Struct, kw_only=True):
    category_id: str | None = None
    category_name: str | None = None
    color: str | None = None
    item_id: str | None = None
    item_name: str | None = None


class AttendanceFinished(Struct, kw_only=True):
    attendance_number: int | str
    status: str | None
    customer: Customer
    department: str | None
    finished_by: str | None
    operator_report: str | None
    rating_observation: str | None
    request_time: int | None
    start_time: int | None
    end_time: int | None
    categories: list[Category]
    messages: list[Message]


class AttendanceStarted(Struct, kw_only=True):
    attendance_number: int | str
    status: str | None
    customer: Customer
    department: str | None
    operator: str | None
    moment: int | None
    start_time: int | None
    messages: list[Message]


class MessageSent(Struct, kw_only=True):
    """``message.sent`` and ``message.delivery_failed`` (the latter with ``error`` set)."""

    message_id: str | None
    zaap_id: str | None
    phone: str
    instance_id: str | None
    moment: int | None
    error: str | None
    error_code: str | None
    custom_id: str | None = None


class MessageStatus(Struct, kw_only=True):
    status: str
    message_ids: list[str]
    phone: str | None
    instance_id: str | None
    moment: int | None
    is_group: bool | None
    phone_device: int | str | None


class InstanceDisconnected(Struct, kw_only=True):
    instance_id: str | None
    disconnected: bool
    error: str | None
    moment: int | None


EventData = (
    AttendanceFinished
    | AttendanceStarted
    | Message
    | MessageSent
    | MessageStatus
    | InstanceDisconnected
)


class Envelope(Struct, kw_only=True):
    """The value of every record on an event topic."""

    event_id: str
    event_type: str
    schema_version: int = SCHEMA_VERSION
    tenant: str
    received_at: int
    data: Any
