"""Our normalised events: snake_case, times in epoch ms, absent -> null, lists never null."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from msgspec import Struct

from pipeline.events.content import AnyContent, Image
from pipeline.webhooks import EventType

SCHEMA_VERSION = 1


# Every field is required, so positional: normalise.message builds one per transcript
# message, and msgspec matches keyword arguments one name at a time: for 40 fields that
# costs several times a positional call (about 4 us against under 1 us). The JSON is
# the same: nothing is ever omitted, absent values are written as null. gc=False: built
# from decoded JSON, a Message holds no reference cycle, so the collector need not
# track hundreds of them.
class Message(Struct, gc=False):
    """One chat message: ``message.received``'s data and each transcript entry."""

    message_id: str | None
    moment: int | None
    phone: str | None
    chat_name: str | None
    sender_name: str | None
    sender_photo: str | None
    photo: str | None
    from_me: bool | None
    status: str | None
    is_group: bool | None
    is_newsletter: bool | None
    is_broadcast: bool | None
    is_edit: bool | None
    is_status_reply: bool | None
    is_waiting: bool | None
    is_automatic: bool | None
    is_forwarded: bool | None
    from_api: bool | None
    view_once: bool | None
    instance_id: str | None
    connected_phone: str | None
    sender_lid: str | None
    chat_lid: str | None
    participant_phone: str | None
    participant_lid: str | None
    reference_message_id: str | None
    expiration_seconds: int | None
    expires_at: Any
    code: Any
    external_ad: dict[str, Any] | None
    notification: str | None
    notification_parameters: list[Any]
    call_id: str | None
    request_method: str | None
    profile_name: str | None
    updated_photo: str | None
    link_mode: str | None
    broadcast_recipients: list[str]
    status_image: Image | None
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


class ErasureRequested(Struct, kw_only=True):
    """``privacy.erasure_requested``: forget one customer of one tenant (``forget``).

    Keyed ``tenant:subject`` on a compacted topic. It carries the phone, because the
    consumers it tells (LGPD art. 18 §6) hold phones, not our pseudonyms; ``token`` is
    what the phone becomes in every row (pipeline/privacy/erasure.py).
    """

    request_id: str
    subject: str  # the tenant's pseudonym of the phone: what audit tables keep
    phone: str  # normalised; consumers need it to find their copies
    token: str  # what the phone becomes in every row
    reason: str | None
    requested_at: int  # epoch ms
    suppress: bool = False  # also anonymise this customer's future events at load time


EventData = (
    AttendanceFinished
    | AttendanceStarted
    | Message
    | MessageSent
    | MessageStatus
    | InstanceDisconnected
)


# The data of each event type: one source for the decoders, the schemas and AsyncAPI.
DATA_OF: dict[EventType, type[Struct]] = {
    EventType.ATTENDANCE_FINISHED: AttendanceFinished,
    EventType.ATTENDANCE_STARTED: AttendanceStarted,
    EventType.MESSAGE_RECEIVED: Message,
    EventType.MESSAGE_SENT: MessageSent,
    EventType.MESSAGE_DELIVERY_FAILED: MessageSent,
    EventType.MESSAGE_STATUS: MessageStatus,
    EventType.INSTANCE_DISCONNECTED: InstanceDisconnected,
    EventType.ERASURE_REQUESTED: ErasureRequested,
}


D = TypeVar("D")


# Generic over its data: a consumer decodes ``Envelope[AttendanceFinished]`` and gets a
# typed ``data``; the producer builds it unparameterised.
class Envelope(Struct, Generic[D], kw_only=True):
    """The value of every record on an event topic."""

    event_id: str
    event_type: str
    schema_version: int = SCHEMA_VERSION
    tenant: str
    received_at: int
    data: D
