"""Plug's wire shapes: msgspec Structs named after what Plug sends.

Field names stay exactly as Plug spells them (``momment``, ``departament``,
``"operatorReport "``). Every Struct is loose: unknown fields are skipped and every
field has a default, so new or missing fields never break decoding. The few
fields that identify a webhook have no default; a body without them is not that
webhook's shape. Where Plug's docs disagree on a type (``momment`` as number or
string, ``pageCount``), the field accepts both.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct

from pipeline.plug.chat import ChatKey

# A timestamp: epoch ms usually, epoch seconds sometimes, a string in some doc tables.
Moment = int | float | str | None
Extra = dict[str, Any] | None


# gc=False on the content Structs, as on MessageWire: decoded JSON holds no reference
# cycle, and a transcript decodes one of these a message.
class ReferencedMessage(Struct, gc=False):
    messageId: str | None = None
    fromMe: bool | None = None
    phone: str | None = None
    participant: str | None = None


class TextWire(Struct, gc=False):
    message: str | None = None
    description: str | None = None
    descritpion: str | None = None  # Z-API's own example misspells it
    title: str | None = None
    url: str | None = None
    thumbnailUrl: str | None = None


class ImageWire(Struct, gc=False):
    imageUrl: str | None = None
    thumbnailUrl: str | None = None
    mimeType: str | None = None
    mimetype: str | None = None  # statusImage spells it in lowercase
    caption: str | None = None
    width: int | None = None
    height: int | None = None
    viewOnce: bool | None = None
    downloadError: str | None = None


class AudioWire(Struct, gc=False):
    audioUrl: str | None = None
    mimeType: str | None = None
    ptt: bool | None = None
    seconds: int | float | None = None
    viewOnce: bool | None = None


class VideoWire(Struct, gc=False):
    videoUrl: str | None = None
    mimeType: str | None = None
    caption: str | None = None
    seconds: int | float | None = None
    viewOnce: bool | None = None


class DocumentWire(Struct, gc=False):
    documentUrl: str | None = None
    mimeType: str | None = None
    fileName: str | None = None
    title: str | None = None
    pageCount: int | str | None = None
    thumbnailUrl: str | None = None


class StickerWire(Struct, gc=False):
    stickerUrl: str | None = None
    mimeType: str | None = None


class LocationWire(Struct, gc=False):
    # Any, so the decoder's float_hook keeps over-precise coordinates digit for digit.
    latitude: Any = None
    longitude: Any = None
    address: str | None = None
    url: str | None = None
    name: str | None = None
    thumbnailUrl: str | None = None


class ContactWire(Struct, gc=False):
    displayName: str | None = None
    vCard: str | None = None
    phones: list[str] | None = None


class ReactionWire(Struct, gc=False):
    value: str | None = None
    time: Moment = None
    reactionBy: str | None = None
    referencedMessage: ReferencedMessage | None = None


class MessageWire(Struct, gc=False):
    """A ReceivedCallback, and each entry of an attendance's ``chat`` map.

    The fields follow the order in which Z-API writes a ReceivedCallback: msgspec
    looks a key up starting after the field matched last, so a body in this order
    needs one comparison a key (a transcript decoded about a quarter faster than
    with the fields in their former order).
    gc=False: a decoded value holds no reference cycle, so the collector need not
    track the 40 or 400 of these a transcript makes.
    """

    isStatusReply: bool | None = None
    chatLid: str | None = None
    senderLid: str | None = None
    connectedPhone: str | None = None
    waitingMessage: bool | None = None
    isEdit: bool | None = None
    isGroup: bool | None = None
    isNewsletter: bool | None = None
    instanceId: str | None = None
    messageId: str | None = None
    phone: str | None = None
    fromMe: bool | None = None
    momment: Moment = None
    moment: Moment = None  # two Z-API examples spell it correctly
    expiresAt: Any = None
    status: str | None = None
    chatName: str | None = None
    senderPhoto: str | None = None
    senderName: str | None = None
    participantPhone: str | None = None
    participantLid: str | None = None
    photo: str | None = None
    broadcast: bool | None = None
    referenceMessageId: str | None = None
    externalAdReply: Extra = None
    forwarded: bool | None = None
    type: str | None = None
    fromApi: bool | None = None
    isAutomaticMessage: bool | None = None
    viewOnce: bool | None = None
    messageExpirationSeconds: int | None = None
    # content: one of these is present
    text: TextWire | None = None
    image: ImageWire | None = None
    audio: AudioWire | None = None
    video: VideoWire | None = None
    document: DocumentWire | None = None
    sticker: StickerWire | None = None
    location: LocationWire | None = None
    contact: ContactWire | None = None
    reaction: ReactionWire | None = None
    statusImage: ImageWire | None = None
    buttonsResponseMessage: Extra = None
    listResponseMessage: Extra = None
    buttonsMessage: Extra = None
    hydratedTemplate: Extra = None
    carouselMessage: Extra = None
    pixKeyMessage: Extra = None
    poll: Extra = None
    pollVote: Extra = None
    event: Extra = None
    eventResponse: Extra = None
    pinMessage: Extra = None
    product: Extra = None
    order: Extra = None
    reviewAndPay: Extra = None
    reviewOrder: Extra = None
    requestPayment: Extra = None
    sendPayment: Extra = None
    newsletterAdminInvite: Extra = None
    notification: str | None = None
    notificationParameters: list[Any] | None = None
    callId: str | None = None
    code: Any = None
    linkMode: str | None = None
    requestMethod: str | None = None
    profileName: str | None = None
    updatedPhoto: str | None = None
    broadcastRecipients: list[str] | None = None


class Customer(Struct):
    name: str | None = None
    phone: str | None = None


class CategoryWire(Struct):
    """The legacy single ``attendanceCategory``."""

    id: str | None = None
    name: str | None = None
    color: str | None = None


class CategoryItemWire(Struct):
    """One entry of the 2024 ``attendanceCategories`` list."""

    categoryId: str | None = None
    categoryName: str | None = None
    color: str | None = None
    itemId: str | None = None
    itemName: str | None = None


class AttendanceWire(Struct, rename={"operatorReportSpaced": "operatorReport "}):
    attendanceNumber: int | str
    customer: Customer = msgspec.field(default_factory=Customer)
    departament: str | None = None
    status: str | None = None
    startTime: Moment = None
    endTime: Moment = None
    requestTime: Moment = None
    momment: Moment = None
    finishBy: str | None = None
    operator: str | None = None
    operatorReportSpaced: str | None = None  # Plug's key ends in a space
    operatorReport: str | None = None
    ratingObservation: str | None = None
    attendanceCategory: CategoryWire | None = None
    attendanceCategories: list[CategoryItemWire] | None = None


class AttendanceWebhook(Struct):
    """finishAttendance and startAttendance: the attendance plus its chat map.

    ``chat`` is an object keyed by message ID whose keys can repeat: keyed by
    ``ChatKey`` every entry is kept, in order (decode with ``chat.decode_hook``).
    """

    attendance: AttendanceWire
    chat: dict[ChatKey, MessageWire] = {}


class DeliveryCallback(Struct):
    """sendingMessage, and messageDeliveryError when ``error`` is set."""

    phone: str
    type: str | None = None
    messageId: str | None = None
    zaapId: str | None = None
    instanceId: str | None = None
    momment: Moment = None
    error: str | None = None
    errorCode: str | None = None
    customId: str | None = None


class MessageStatusCallback(Struct):
    status: str
    ids: list[str]
    phone: str | None = None
    type: str | None = None
    momment: Moment = None
    instanceId: str | None = None
    phoneDevice: int | str | None = None
    isGroup: bool | None = None


class DisconnectedCallback(Struct):
    disconnected: bool
    type: str | None = None
    error: str | None = None
    momment: Moment = None
    instanceId: str | None = None
