"""Plug's wire shapes -> our events. Pure functions: no I/O, no clock."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, cast

from pipeline.events import content as c
from pipeline.events.models import (
    AttendanceFinished,
    AttendanceStarted,
    Category,
    Customer,
    InstanceDisconnected,
    Message,
    MessageSent,
    MessageStatus,
)
from pipeline.plug import wire
from pipeline.plug.chat import ChatKey

# Plug's status spellings over the years -> one name each; unknown values stay as sent.
# Keyed by ``str | None`` so that ``_STATUS.get(s, s)`` also takes None (no key: None).
_STATUS: dict[str | None, str] = {
    "MESSAGE_SENT": "SENT",
    "MESSAGE_RECEIVED": "RECEIVED",
    "MESSAGE_READ": "READ",
    "READ-SELF": "READ_BY_ME",
}

# Values below this are epoch seconds: 1e11 ms is 1973, 1e11 s is the year 5138.
_SECONDS_BELOW = 100_000_000_000
# Beyond a signed 64-bit integer a time is nonsense, and JSON consumers cannot hold it.
_MS_LIMIT = 2**63


def status(value: str | None) -> str | None:
    return _STATUS.get(value, value)


def epoch_ms(value: wire.Moment) -> int | None:
    """A Plug time as epoch ms; seconds are scaled, numeric strings parsed."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value) if "." in value else int(value)
        except ValueError:
            return None
    ms = value * 1000 if abs(value) < _SECONDS_BELOW else value
    if not -_MS_LIMIT < ms < _MS_LIMIT:  # also false for NaN; inf and huge values end here
        return None
    return int(ms)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@lru_cache(maxsize=4096)
def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def snake_keys(value: Any) -> Any:
    """A JSON value with every object key in snake_case, values untouched."""
    if isinstance(value, dict):
        return {snake(k): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def _image(img: wire.ImageWire) -> c.Image:
    return c.Image(
        image_url=img.imageUrl,
        thumbnail_url=img.thumbnailUrl,
        mime_type=img.mimeType if img.mimeType is not None else img.mimetype,
        caption=img.caption,
        width=img.width,
        height=img.height,
        view_once=img.viewOnce,
        download_error=img.downloadError,
    )


def content(msg: wire.MessageWire) -> c.AnyContent:  # noqa: C901  (one branch per content kind)
    """The message's content as a tagged kind; the first content key present wins."""
    if (t := msg.text) is not None:
        return c.Text(
            message=t.message,
            description=t.description if t.description is not None else t.descritpion,
            title=t.title,
            url=t.url,
            thumbnail_url=t.thumbnailUrl,
        )
    if msg.image is not None:
        return _image(msg.image)
    if (a := msg.audio) is not None:
        return c.Audio(
            audio_url=a.audioUrl,
            mime_type=a.mimeType,
            voice_note=a.ptt,
            seconds=a.seconds,
            view_once=a.viewOnce,
        )
    if (v := msg.video) is not None:
        return c.Video(
            video_url=v.videoUrl,
            mime_type=v.mimeType,
            caption=v.caption,
            seconds=v.seconds,
            view_once=v.viewOnce,
        )
    if (d := msg.document) is not None:
        return c.Document(
            document_url=d.documentUrl,
            mime_type=d.mimeType,
            file_name=d.fileName,
            title=d.title,
            page_count=d.pageCount,
            thumbnail_url=d.thumbnailUrl,
        )
    if (s := msg.sticker) is not None:
        return c.Sticker(sticker_url=s.stickerUrl, mime_type=s.mimeType)
    if (loc := msg.location) is not None:
        return c.Location(
            latitude=loc.latitude,
            longitude=loc.longitude,
            address=loc.address,
            url=loc.url,
            name=loc.name,
            thumbnail_url=loc.thumbnailUrl,
        )
    if (ct := msg.contact) is not None:
        return c.Contact(display_name=ct.displayName, vcard=ct.vCard, phones=ct.phones or [])
    if (r := msg.reaction) is not None:
        ref = r.referencedMessage
        return c.Reaction(
            emoji=r.value,
            time=epoch_ms(r.time),
            reaction_by=r.reactionBy,
            referenced_message=None
            if ref is None
            else c.ReferencedMessage(
                message_id=ref.messageId,
                from_me=ref.fromMe,
                phone=ref.phone,
                participant=ref.participant,
            ),
        )
    for key, kind in c.PASSTHROUGH_KINDS.items():
        fields = getattr(msg, key)
        if fields is not None:
            return cast(c.AnyContent, kind(fields=snake_keys(fields)))
    if msg.notification is not None:
        return c.Notification(
            name=msg.notification, parameters=snake_keys(msg.notificationParameters or [])
        )
    if msg.waitingMessage:
        return c.Waiting()
    return c.Unknown()


def message(msg: wire.MessageWire, key: str | None = None) -> Message:
    """One message; ``key`` is its chat-map key, the ID when the body has none."""
    when = msg.momment if msg.momment is not None else msg.moment
    # Almost every moment is already epoch ms; epoch_ms is for the rest.
    moment = when if type(when) is int and _SECONDS_BELOW <= when < _MS_LIMIT else epoch_ms(when)
    params = msg.notificationParameters
    # Positional, in Message's field order (checked below): see Message for why.
    return Message(
        msg.messageId if msg.messageId is not None else key,  # message_id
        moment,
        msg.phone,
        msg.chatName,
        msg.senderName,
        msg.senderPhoto,
        msg.photo,
        msg.fromMe,
        _STATUS.get(msg.status, msg.status),  # status(msg.status), without the call
        msg.isGroup,
        msg.isNewsletter,
        msg.broadcast,  # is_broadcast
        msg.isEdit,
        msg.isStatusReply,
        msg.waitingMessage,  # is_waiting
        msg.isAutomaticMessage,  # is_automatic
        msg.forwarded,  # is_forwarded
        msg.fromApi,
        msg.viewOnce,
        msg.instanceId,
        msg.connectedPhone,
        msg.senderLid,
        msg.chatLid,
        msg.participantPhone,
        msg.participantLid,
        msg.referenceMessageId,
        msg.messageExpirationSeconds,  # expiration_seconds
        msg.expiresAt,
        msg.code,
        None if msg.externalAdReply is None else snake_keys(msg.externalAdReply),  # external_ad
        msg.notification,
        [] if not params else snake_keys(params),  # notification_parameters
        msg.callId,
        msg.requestMethod,
        msg.profileName,
        msg.updatedPhoto,
        msg.linkMode,
        msg.broadcastRecipients or [],
        None if msg.statusImage is None else _image(msg.statusImage),  # status_image
        content(msg),
    )


# The order ``message`` passes its arguments in: a field added to or moved in Message
# must fail here, at import, rather than shift every value into its neighbour's key.
_MESSAGE_FIELDS = (
    "message_id",
    "moment",
    "phone",
    "chat_name",
    "sender_name",
    "sender_photo",
    "photo",
    "from_me",
    "status",
    "is_group",
    "is_newsletter",
    "is_broadcast",
    "is_edit",
    "is_status_reply",
    "is_waiting",
    "is_automatic",
    "is_forwarded",
    "from_api",
    "view_once",
    "instance_id",
    "connected_phone",
    "sender_lid",
    "chat_lid",
    "participant_phone",
    "participant_lid",
    "reference_message_id",
    "expiration_seconds",
    "expires_at",
    "code",
    "external_ad",
    "notification",
    "notification_parameters",
    "call_id",
    "request_method",
    "profile_name",
    "updated_photo",
    "link_mode",
    "broadcast_recipients",
    "status_image",
    "content",
)
if Message.__struct_fields__ != _MESSAGE_FIELDS:
    raise ImportError("normalise.message passes Message's fields by position: update it")


def _order(m: Message) -> tuple[int, str]:
    return (m.moment if m.moment is not None else -1, m.message_id or "")


def transcript(chat: dict[ChatKey, wire.MessageWire]) -> list[Message]:
    """The chat map as a list ordered by (moment, message_id); every entry kept."""
    return sorted([message(m, key.text) for key, m in chat.items()], key=_order)


def categories(att: wire.AttendanceWire) -> list[Category]:
    """Both category formats as one list; the legacy one adds an entry only if new."""
    found = [
        Category(
            category_id=i.categoryId,
            category_name=i.categoryName,
            color=i.color,
            item_id=i.itemId,
            item_name=i.itemName,
        )
        for i in att.attendanceCategories or []
    ]
    legacy = att.attendanceCategory
    if legacy is not None:
        single = Category(category_id=legacy.id, category_name=legacy.name, color=legacy.color)
        if not any(
            (f.category_id, f.category_name, f.color)
            == (single.category_id, single.category_name, single.color)
            for f in found
        ):
            found.insert(0, single)
    return found


def _customer(att: wire.AttendanceWire) -> Customer:
    return Customer(name=att.customer.name, phone=att.customer.phone)


def attendance_finished(att: wire.AttendanceWire, messages: list[Message]) -> AttendanceFinished:
    return AttendanceFinished(
        attendance_number=att.attendanceNumber,
        status=att.status,
        customer=_customer(att),
        department=att.departament,
        finished_by=att.finishBy,
        operator_report=(
            att.operatorReportSpaced if att.operatorReportSpaced is not None else att.operatorReport
        ),
        rating_observation=att.ratingObservation,
        request_time=epoch_ms(att.requestTime),
        start_time=epoch_ms(att.startTime),
        end_time=epoch_ms(att.endTime),
        categories=categories(att),
        messages=messages,
    )


def attendance_started(att: wire.AttendanceWire, messages: list[Message]) -> AttendanceStarted:
    return AttendanceStarted(
        attendance_number=att.attendanceNumber,
        status=att.status,
        customer=_customer(att),
        department=att.departament,
        operator=att.operator,
        moment=epoch_ms(att.momment),
        start_time=epoch_ms(att.startTime),
        messages=messages,
    )


def message_sent(d: wire.DeliveryCallback) -> MessageSent:
    return MessageSent(
        message_id=d.messageId,
        zaap_id=d.zaapId,
        phone=d.phone,
        instance_id=d.instanceId,
        moment=epoch_ms(d.momment),
        error=d.error,
        error_code=d.errorCode,
        custom_id=d.customId,
    )


def message_status(s: wire.MessageStatusCallback) -> MessageStatus:
    return MessageStatus(
        status=status(s.status) or s.status,
        message_ids=s.ids,
        phone=s.phone,
        instance_id=s.instanceId,
        moment=epoch_ms(s.momment),
        is_group=s.isGroup,
        phone_device=s.phoneDevice,
    )


def instance_disconnected(d: wire.DisconnectedCallback) -> InstanceDisconnected:
    return InstanceDisconnected(
        instance_id=d.instanceId,
        disconnected=d.disconnected,
        error=d.error,
        moment=epoch_ms(d.momment),
    )
