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

# Plug's status spellings over the years -> one name each; unknown values stay as sent.
_STATUS = {
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
    if value is None:
        return None
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


def content(msg: wire.MessageWire) -> c.AnyContent:
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
    return Message(
        message_id=msg.messageId if msg.messageId is not None else key,
        moment=epoch_ms(msg.momment if msg.momment is not None else msg.moment),
        phone=msg.phone,
        chat_name=msg.chatName,
        sender_name=msg.senderName,
        sender_photo=msg.senderPhoto,
        photo=msg.photo,
        from_me=msg.fromMe,
        status=status(msg.status),
        is_group=msg.isGroup,
        is_newsletter=msg.isNewsletter,
        is_broadcast=msg.broadcast,
        is_edit=msg.isEdit,
        is_status_reply=msg.isStatusReply,
        is_waiting=msg.waitingMessage,
        is_automatic=msg.isAutomaticMessage,
        is_forwarded=msg.forwarded,
        from_api=msg.fromApi,
        view_once=msg.viewOnce,
        instance_id=msg.instanceId,
        connected_phone=msg.connectedPhone,
        sender_lid=msg.senderLid,
        chat_lid=msg.chatLid,
        participant_phone=msg.participantPhone,
        participant_lid=msg.participantLid,
        reference_message_id=msg.referenceMessageId,
        expiration_seconds=msg.messageExpirationSeconds,
        expires_at=msg.expiresAt,
        code=msg.code,
        external_ad=None if msg.externalAdReply is None else snake_keys(msg.externalAdReply),
        notification=msg.notification,
        notification_parameters=snake_keys(msg.notificationParameters or []),
        call_id=msg.callId,
        request_method=msg.requestMethod,
        profile_name=msg.profileName,
        updated_photo=msg.updatedPhoto,
        link_mode=msg.linkMode,
        broadcast_recipients=msg.broadcastRecipients or [],
        status_image=None if msg.statusImage is None else _image(msg.statusImage),
        content=content(msg),
    )


def _order(m: Message) -> tuple[int, str]:
    return (m.moment if m.moment is not None else -1, m.message_id or "")


def transcript(entries: list[tuple[str, wire.MessageWire]]) -> list[Message]:
    """The chat map as a list ordered by (moment, message_id); every entry kept."""
    return sorted((message(m, key) for key, m in entries), key=_order)


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
