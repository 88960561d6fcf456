"""The same decode + normalise + encode work, written by hand with pydantic v2.

This is the baseline ``bench/decode.py`` compares ``pipeline.ingest.ingest`` with:
what a careful user would write without msgspec. Wire models are ``BaseModel``s
with camelCase aliases (Plug's ``momment``, ``departament`` and ``"operatorReport "``
spelled out), the body is read with ``model_validate_json``, the result is
normalised into pydantic output models with the pipeline's snake_case fields
(content tagged by ``kind``, both category formats merged, statuses mapped,
seconds scaled to ms) and the envelope is written with ``model_dump_json()``.

One deliberate difference: ``chat`` is decoded as ``dict[str, MessageWire]``, as a
hand-written model would do, so a key that repeats keeps only its last message.
The pipeline's splitter keeps every entry; ``decode.py`` reports the difference
for bodies that repeat a key (Plug's own example does).

Routing (topic, key, headers, event id) reuses ``pipeline.route`` and
``pipeline.ingest.event_id``: that part has nothing to do with the library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from pipeline import route
from pipeline.ingest import event_id
from pipeline.record import Headers
from pipeline.webhooks import EventType, Webhook

Moment = int | float | str | None
Extra = dict[str, Any] | None


class BaselineMalformed(ValueError):
    """The body is not JSON or not its webhook's shape."""


# --- wire models: what Plug sends ---------------------------------------------------------


class Wire(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ReferencedMessageWire(Wire):
    message_id: str | None = None
    from_me: bool | None = None
    phone: str | None = None
    participant: str | None = None


class TextWire(Wire):
    message: str | None = None
    description: str | None = None
    description_typo: str | None = Field(None, alias="descritpion")
    title: str | None = None
    url: str | None = None
    thumbnail_url: str | None = None


class ImageWire(Wire):
    image_url: str | None = None
    thumbnail_url: str | None = None
    mime_type: str | None = None
    mime_type_lower: str | None = Field(None, alias="mimetype")
    caption: str | None = None
    width: int | None = None
    height: int | None = None
    view_once: bool | None = None
    download_error: str | None = None


class AudioWire(Wire):
    audio_url: str | None = None
    mime_type: str | None = None
    ptt: bool | None = None
    seconds: int | float | None = None
    view_once: bool | None = None


class VideoWire(Wire):
    video_url: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    seconds: int | float | None = None
    view_once: bool | None = None


class DocumentWire(Wire):
    document_url: str | None = None
    mime_type: str | None = None
    file_name: str | None = None
    title: str | None = None
    page_count: int | str | None = None
    thumbnail_url: str | None = None


class StickerWire(Wire):
    sticker_url: str | None = None
    mime_type: str | None = None


class LocationWire(Wire):
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    url: str | None = None
    name: str | None = None
    thumbnail_url: str | None = None


class ContactWire(Wire):
    display_name: str | None = None
    v_card: str | None = None
    phones: list[str] | None = None


class ReactionWire(Wire):
    value: str | None = None
    time: Moment = None
    reaction_by: str | None = None
    referenced_message: ReferencedMessageWire | None = None


class MessageWire(Wire):
    type: str | None = None
    instance_id: str | None = None
    message_id: str | None = None
    phone: str | None = None
    from_me: bool | None = None
    moment: Moment = Field(None, alias="momment")
    moment_spelled: Moment = Field(None, alias="moment")
    status: str | None = None
    chat_name: str | None = None
    sender_name: str | None = None
    sender_photo: str | None = None
    photo: str | None = None
    broadcast: bool | None = None
    is_group: bool | None = None
    is_newsletter: bool | None = None
    is_edit: bool | None = None
    is_status_reply: bool | None = None
    waiting_message: bool | None = None
    is_automatic_message: bool | None = None
    connected_phone: str | None = None
    sender_lid: str | None = None
    chat_lid: str | None = None
    participant_phone: str | None = None
    participant_lid: str | None = None
    reference_message_id: str | None = None
    forwarded: bool | None = None
    from_api: bool | None = None
    view_once: bool | None = None
    message_expiration_seconds: int | None = None
    expires_at: Any = None
    code: Any = None
    external_ad_reply: Extra = None
    notification: str | None = None
    notification_parameters: list[Any] | None = None
    call_id: str | None = None
    request_method: str | None = None
    profile_name: str | None = None
    updated_photo: str | None = None
    link_mode: str | None = None
    broadcast_recipients: list[str] | None = None
    text: TextWire | None = None
    image: ImageWire | None = None
    audio: AudioWire | None = None
    video: VideoWire | None = None
    document: DocumentWire | None = None
    sticker: StickerWire | None = None
    location: LocationWire | None = None
    contact: ContactWire | None = None
    reaction: ReactionWire | None = None
    status_image: ImageWire | None = None
    buttons_response_message: Extra = None
    list_response_message: Extra = None
    buttons_message: Extra = None
    hydrated_template: Extra = None
    carousel_message: Extra = None
    pix_key_message: Extra = None
    poll: Extra = None
    poll_vote: Extra = None
    event: Extra = None
    event_response: Extra = None
    pin_message: Extra = None
    product: Extra = None
    order: Extra = None
    review_and_pay: Extra = None
    review_order: Extra = None
    request_payment: Extra = None
    send_payment: Extra = None
    newsletter_admin_invite: Extra = None


class CustomerWire(Wire):
    name: str | None = None
    phone: str | None = None


class CategoryWire(Wire):
    id: str | None = None
    name: str | None = None
    color: str | None = None


class CategoryItemWire(Wire):
    category_id: str | None = None
    category_name: str | None = None
    color: str | None = None
    item_id: str | None = None
    item_name: str | None = None


class AttendanceWire(Wire):
    attendance_number: int | str
    customer: CustomerWire = Field(default_factory=CustomerWire)
    department: str | None = Field(None, alias="departament")
    status: str | None = None
    start_time: Moment = None
    end_time: Moment = None
    request_time: Moment = None
    moment: Moment = Field(None, alias="momment")
    finish_by: str | None = None
    operator: str | None = None
    operator_report_spaced: str | None = Field(None, alias="operatorReport ")
    operator_report: str | None = None
    rating_observation: str | None = None
    attendance_category: CategoryWire | None = None
    attendance_categories: list[CategoryItemWire] | None = None


class AttendanceWebhook(Wire):
    attendance: AttendanceWire
    # A dict, as a hand-written model has it: a repeated key keeps only its last message.
    chat: dict[str, MessageWire] = Field(default_factory=dict)


class DeliveryCallback(Wire):
    phone: str
    type: str | None = None
    message_id: str | None = None
    zaap_id: str | None = None
    instance_id: str | None = None
    moment: Moment = Field(None, alias="momment")
    error: str | None = None
    error_code: str | None = None
    custom_id: str | None = None


class MessageStatusCallback(Wire):
    status: str
    ids: list[str]
    phone: str | None = None
    type: str | None = None
    moment: Moment = Field(None, alias="momment")
    instance_id: str | None = None
    phone_device: int | str | None = None
    is_group: bool | None = None


class DisconnectedCallback(Wire):
    disconnected: bool
    type: str | None = None
    error: str | None = None
    moment: Moment = Field(None, alias="momment")
    instance_id: str | None = None


# --- output models: the pipeline's events, snake_case -------------------------------------


class Text(BaseModel):
    kind: Literal["text"] = "text"
    message: str | None = None
    description: str | None = None
    title: str | None = None
    url: str | None = None
    thumbnail_url: str | None = None


class Image(BaseModel):
    kind: Literal["image"] = "image"
    image_url: str | None = None
    thumbnail_url: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    width: int | None = None
    height: int | None = None
    view_once: bool | None = None
    download_error: str | None = None


class Audio(BaseModel):
    kind: Literal["audio"] = "audio"
    audio_url: str | None = None
    mime_type: str | None = None
    voice_note: bool | None = None
    seconds: int | float | None = None
    view_once: bool | None = None


class Video(BaseModel):
    kind: Literal["video"] = "video"
    video_url: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    seconds: int | float | None = None
    view_once: bool | None = None


class Document(BaseModel):
    kind: Literal["document"] = "document"
    document_url: str | None = None
    mime_type: str | None = None
    file_name: str | None = None
    title: str | None = None
    page_count: int | str | None = None
    thumbnail_url: str | None = None


class Sticker(BaseModel):
    kind: Literal["sticker"] = "sticker"
    sticker_url: str | None = None
    mime_type: str | None = None


class Location(BaseModel):
    kind: Literal["location"] = "location"
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    url: str | None = None
    name: str | None = None
    thumbnail_url: str | None = None


class Contact(BaseModel):
    kind: Literal["contact"] = "contact"
    display_name: str | None = None
    vcard: str | None = None
    phones: list[str] = Field(default_factory=list)


class ReferencedMessage(BaseModel):
    message_id: str | None = None
    from_me: bool | None = None
    phone: str | None = None
    participant: str | None = None


class Reaction(BaseModel):
    kind: Literal["reaction"] = "reaction"
    emoji: str | None = None
    time: int | None = None
    reaction_by: str | None = None
    referenced_message: ReferencedMessage | None = None


class Notification(BaseModel):
    kind: Literal["notification"] = "notification"
    name: str | None = None
    parameters: list[Any] = Field(default_factory=list)


class Waiting(BaseModel):
    kind: Literal["waiting"] = "waiting"


class Unknown(BaseModel):
    kind: Literal["unknown"] = "unknown"


class Passthrough(BaseModel):
    """WhatsApp's richer kinds, fields kept whole with snake_case keys."""

    kind: str
    fields: dict[str, Any] = Field(default_factory=dict)


AnyContent = (
    Text
    | Image
    | Audio
    | Video
    | Document
    | Sticker
    | Location
    | Contact
    | Reaction
    | Notification
    | Waiting
    | Unknown
    | Passthrough
)

# Plug's content field (Python name) -> the pipeline's kind.
PASSTHROUGH_KINDS = {
    "buttons_response_message": "buttons_response",
    "list_response_message": "list_response",
    "buttons_message": "buttons",
    "hydrated_template": "template",
    "carousel_message": "carousel",
    "pix_key_message": "pix_key",
    "poll": "poll",
    "poll_vote": "poll_vote",
    "event": "event",
    "event_response": "event_response",
    "pin_message": "pin",
    "product": "product",
    "order": "order",
    "review_and_pay": "review_and_pay",
    "review_order": "review_order",
    "request_payment": "request_payment",
    "send_payment": "send_payment",
    "newsletter_admin_invite": "newsletter_admin_invite",
}


class Message(BaseModel):
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
    notification_parameters: list[Any] = Field(default_factory=list)
    call_id: str | None = None
    request_method: str | None = None
    profile_name: str | None = None
    updated_photo: str | None = None
    link_mode: str | None = None
    broadcast_recipients: list[str] = Field(default_factory=list)
    status_image: Image | None = None
    content: AnyContent


class Customer(BaseModel):
    name: str | None = None
    phone: str | None = None


class Category(BaseModel):
    category_id: str | None = None
    category_name: str | None = None
    color: str | None = None
    item_id: str | None = None
    item_name: str | None = None


class AttendanceFinished(BaseModel):
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


class AttendanceStarted(BaseModel):
    attendance_number: int | str
    status: str | None
    customer: Customer
    department: str | None
    operator: str | None
    moment: int | None
    start_time: int | None
    messages: list[Message]


class MessageSent(BaseModel):
    message_id: str | None
    zaap_id: str | None
    phone: str
    instance_id: str | None
    moment: int | None
    error: str | None
    error_code: str | None
    custom_id: str | None = None


class MessageStatus(BaseModel):
    status: str
    message_ids: list[str]
    phone: str | None
    instance_id: str | None
    moment: int | None
    is_group: bool | None
    phone_device: int | str | None


class InstanceDisconnected(BaseModel):
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


class Envelope(BaseModel):
    event_id: str
    event_type: str
    schema_version: int = 1
    tenant: str
    received_at: int
    data: EventData


@dataclass(frozen=True)
class BaselineRecord:
    topic: str
    key: bytes
    value: bytes
    headers: Headers
    event_id: str


# --- normalising ---------------------------------------------------------------------------

_STATUS = {
    "MESSAGE_SENT": "SENT",
    "MESSAGE_RECEIVED": "RECEIVED",
    "MESSAGE_READ": "READ",
    "READ-SELF": "READ_BY_ME",
}
_SECONDS_BELOW = 100_000_000_000
_MS_LIMIT = 2**63
_CALLBACK_TYPE = {
    Webhook.RECEIVE_MESSAGE: "receivedcallback",
    Webhook.SENDING_MESSAGE: "deliverycallback",
    Webhook.MESSAGE_DELIVERY_ERROR: "deliverycallback",
    Webhook.MESSAGE_STATUS: "messagestatuscallback",
    Webhook.WHEN_DISCONNECTING: "disconnectedcallback",
}


def status(value: str | None) -> str | None:
    return None if value is None else _STATUS.get(value, value)


def epoch_ms(value: Moment) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value) if "." in value else int(value)
        except ValueError:
            return None
    ms = value * 1000 if abs(value) < _SECONDS_BELOW else value
    if not -_MS_LIMIT < ms < _MS_LIMIT:
        return None
    return int(ms)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@lru_cache(maxsize=4096)
def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def snake_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {snake(k): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def _image(img: ImageWire) -> Image:
    return Image(
        image_url=img.image_url,
        thumbnail_url=img.thumbnail_url,
        mime_type=img.mime_type if img.mime_type is not None else img.mime_type_lower,
        caption=img.caption,
        width=img.width,
        height=img.height,
        view_once=img.view_once,
        download_error=img.download_error,
    )


def content(msg: MessageWire) -> AnyContent:  # noqa: C901  (mirrors normalise.content)
    if (t := msg.text) is not None:
        return Text(
            message=t.message,
            description=t.description if t.description is not None else t.description_typo,
            title=t.title,
            url=t.url,
            thumbnail_url=t.thumbnail_url,
        )
    if msg.image is not None:
        return _image(msg.image)
    if (a := msg.audio) is not None:
        return Audio(
            audio_url=a.audio_url,
            mime_type=a.mime_type,
            voice_note=a.ptt,
            seconds=a.seconds,
            view_once=a.view_once,
        )
    if (v := msg.video) is not None:
        return Video(
            video_url=v.video_url,
            mime_type=v.mime_type,
            caption=v.caption,
            seconds=v.seconds,
            view_once=v.view_once,
        )
    if (d := msg.document) is not None:
        return Document(
            document_url=d.document_url,
            mime_type=d.mime_type,
            file_name=d.file_name,
            title=d.title,
            page_count=d.page_count,
            thumbnail_url=d.thumbnail_url,
        )
    if (s := msg.sticker) is not None:
        return Sticker(sticker_url=s.sticker_url, mime_type=s.mime_type)
    if (loc := msg.location) is not None:
        return Location(
            latitude=loc.latitude,
            longitude=loc.longitude,
            address=loc.address,
            url=loc.url,
            name=loc.name,
            thumbnail_url=loc.thumbnail_url,
        )
    if (ct := msg.contact) is not None:
        return Contact(display_name=ct.display_name, vcard=ct.v_card, phones=ct.phones or [])
    if (r := msg.reaction) is not None:
        ref = r.referenced_message
        return Reaction(
            emoji=r.value,
            time=epoch_ms(r.time),
            reaction_by=r.reaction_by,
            referenced_message=None
            if ref is None
            else ReferencedMessage(
                message_id=ref.message_id,
                from_me=ref.from_me,
                phone=ref.phone,
                participant=ref.participant,
            ),
        )
    for field, kind in PASSTHROUGH_KINDS.items():
        fields = getattr(msg, field)
        if fields is not None:
            return Passthrough(kind=kind, fields=snake_keys(fields))
    if msg.notification is not None:
        return Notification(
            name=msg.notification, parameters=snake_keys(msg.notification_parameters or [])
        )
    if msg.waiting_message:
        return Waiting()
    return Unknown()


def message(msg: MessageWire, key: str | None = None) -> Message:
    return Message(
        message_id=msg.message_id if msg.message_id is not None else key,
        moment=epoch_ms(msg.moment if msg.moment is not None else msg.moment_spelled),
        phone=msg.phone,
        chat_name=msg.chat_name,
        sender_name=msg.sender_name,
        sender_photo=msg.sender_photo,
        photo=msg.photo,
        from_me=msg.from_me,
        status=status(msg.status),
        is_group=msg.is_group,
        is_newsletter=msg.is_newsletter,
        is_broadcast=msg.broadcast,
        is_edit=msg.is_edit,
        is_status_reply=msg.is_status_reply,
        is_waiting=msg.waiting_message,
        is_automatic=msg.is_automatic_message,
        is_forwarded=msg.forwarded,
        from_api=msg.from_api,
        view_once=msg.view_once,
        instance_id=msg.instance_id,
        connected_phone=msg.connected_phone,
        sender_lid=msg.sender_lid,
        chat_lid=msg.chat_lid,
        participant_phone=msg.participant_phone,
        participant_lid=msg.participant_lid,
        reference_message_id=msg.reference_message_id,
        expiration_seconds=msg.message_expiration_seconds,
        expires_at=msg.expires_at,
        code=msg.code,
        external_ad=None if msg.external_ad_reply is None else snake_keys(msg.external_ad_reply),
        notification=msg.notification,
        notification_parameters=snake_keys(msg.notification_parameters or []),
        call_id=msg.call_id,
        request_method=msg.request_method,
        profile_name=msg.profile_name,
        updated_photo=msg.updated_photo,
        link_mode=msg.link_mode,
        broadcast_recipients=msg.broadcast_recipients or [],
        status_image=None if msg.status_image is None else _image(msg.status_image),
        content=content(msg),
    )


def _order(m: Message) -> tuple[int, str]:
    return (m.moment if m.moment is not None else -1, m.message_id or "")


def transcript(chat: dict[str, MessageWire]) -> list[Message]:
    return sorted((message(m, key) for key, m in chat.items()), key=_order)


def categories(att: AttendanceWire) -> list[Category]:
    found = [
        Category(
            category_id=i.category_id,
            category_name=i.category_name,
            color=i.color,
            item_id=i.item_id,
            item_name=i.item_name,
        )
        for i in att.attendance_categories or []
    ]
    legacy = att.attendance_category
    if legacy is not None:
        single = (legacy.id, legacy.name, legacy.color)
        if not any((f.category_id, f.category_name, f.color) == single for f in found):
            found.insert(
                0, Category(category_id=legacy.id, category_name=legacy.name, color=legacy.color)
            )
    return found


def _decode(model: type[Any], body: bytes, webhook: Webhook) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise BaselineMalformed(f"not a {webhook.value} webhook: {exc}") from exc


def _check_type(webhook: Webhook, declared: str | None) -> None:
    if declared is not None and declared.lower() != _CALLBACK_TYPE[webhook]:
        raise BaselineMalformed(f"a {declared} callback was sent to the {webhook.value} webhook")


def normalised(webhook: Webhook, body: bytes) -> tuple[EventType, str | None, EventData]:
    if webhook in (Webhook.FINISH_ATTENDANCE, Webhook.START_ATTENDANCE):
        webhook_body: AttendanceWebhook = _decode(AttendanceWebhook, body, webhook)
        att = webhook_body.attendance
        messages = transcript(webhook_body.chat)
        customer = Customer(name=att.customer.name, phone=att.customer.phone)
        if webhook is Webhook.FINISH_ATTENDANCE:
            report = att.operator_report_spaced
            finished = AttendanceFinished(
                attendance_number=att.attendance_number,
                status=att.status,
                customer=customer,
                department=att.department,
                finished_by=att.finish_by,
                operator_report=report if report is not None else att.operator_report,
                rating_observation=att.rating_observation,
                request_time=epoch_ms(att.request_time),
                start_time=epoch_ms(att.start_time),
                end_time=epoch_ms(att.end_time),
                categories=categories(att),
                messages=messages,
            )
            return EventType.ATTENDANCE_FINISHED, att.customer.phone, finished
        started = AttendanceStarted(
            attendance_number=att.attendance_number,
            status=att.status,
            customer=customer,
            department=att.department,
            operator=att.operator,
            moment=epoch_ms(att.moment),
            start_time=epoch_ms(att.start_time),
            messages=messages,
        )
        return EventType.ATTENDANCE_STARTED, att.customer.phone, started
    if webhook is Webhook.RECEIVE_MESSAGE:
        msg: MessageWire = _decode(MessageWire, body, webhook)
        _check_type(webhook, msg.type)
        if msg.phone is None:
            raise BaselineMalformed("a receive-message webhook needs the chat's phone")
        return EventType.MESSAGE_RECEIVED, msg.phone, message(msg)
    if webhook in (Webhook.SENDING_MESSAGE, Webhook.MESSAGE_DELIVERY_ERROR):
        d: DeliveryCallback = _decode(DeliveryCallback, body, webhook)
        _check_type(webhook, d.type)
        failed = d.error is not None or webhook is Webhook.MESSAGE_DELIVERY_ERROR
        sent = MessageSent(
            message_id=d.message_id,
            zaap_id=d.zaap_id,
            phone=d.phone,
            instance_id=d.instance_id,
            moment=epoch_ms(d.moment),
            error=d.error,
            error_code=d.error_code,
            custom_id=d.custom_id,
        )
        event_type = EventType.MESSAGE_DELIVERY_FAILED if failed else EventType.MESSAGE_SENT
        return event_type, d.phone, sent
    if webhook is Webhook.MESSAGE_STATUS:
        s: MessageStatusCallback = _decode(MessageStatusCallback, body, webhook)
        _check_type(webhook, s.type)
        event = MessageStatus(
            status=status(s.status) or s.status,
            message_ids=s.ids,
            phone=s.phone,
            instance_id=s.instance_id,
            moment=epoch_ms(s.moment),
            is_group=s.is_group,
            phone_device=s.phone_device,
        )
        return EventType.MESSAGE_STATUS, s.phone, event
    dc: DisconnectedCallback = _decode(DisconnectedCallback, body, webhook)
    _check_type(webhook, dc.type)
    gone = InstanceDisconnected(
        instance_id=dc.instance_id,
        disconnected=dc.disconnected,
        error=dc.error,
        moment=epoch_ms(dc.moment),
    )
    return EventType.INSTANCE_DISCONNECTED, dc.instance_id, gone


def ingest(
    webhook: Webhook, tenant: str, body: bytes, received_at: int, prefix: str
) -> BaselineRecord:
    """``pipeline.ingest.ingest``'s work, done with pydantic."""
    event_type, identity, data = normalised(webhook, body)
    eid = event_id(tenant, webhook, body)
    envelope = Envelope(
        event_id=eid,
        event_type=event_type.value,
        tenant=tenant,
        received_at=received_at,
        data=data,
    )
    return BaselineRecord(
        topic=route.event_topic(prefix, event_type),
        key=route.key(tenant, identity),
        value=envelope.model_dump_json().encode(),
        headers=route.event_headers(event_type, eid, tenant, webhook),
        event_id=eid,
    )
