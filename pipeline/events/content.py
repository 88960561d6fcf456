"""Message content: a tagged object whose ``kind`` says what the message carries."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec
from msgspec import Struct

# Coordinates keep every digit Plug sent; they are written as JSON numbers.
Coordinate = Annotated[
    Decimal | float | None, msgspec.Meta(extra_json_schema={"type": ["number", "null"]})
]


# gc=False, for every kind (the option is inherited): built from decoded JSON, content
# holds no reference cycle, and a transcript makes one per message; untracked, each is
# allocated without the collector's header and never checked for tracking.
class Content(Struct, tag_field="kind", kw_only=True, gc=False):
    """Base of every content kind."""


class Text(Content, tag="text"):
    message: str | None = None
    description: str | None = None
    title: str | None = None
    url: str | None = None
    thumbnail_url: str | None = None


class Image(Content, tag="image"):
    image_url: str | None = None
    thumbnail_url: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    width: int | None = None
    height: int | None = None
    view_once: bool | None = None
    download_error: str | None = None


class Audio(Content, tag="audio"):
    audio_url: str | None = None
    mime_type: str | None = None
    voice_note: bool | None = None
    seconds: int | float | None = None
    view_once: bool | None = None


class Video(Content, tag="video"):
    video_url: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    seconds: int | float | None = None
    view_once: bool | None = None


class Document(Content, tag="document"):
    document_url: str | None = None
    mime_type: str | None = None
    file_name: str | None = None
    title: str | None = None
    page_count: int | str | None = None
    thumbnail_url: str | None = None


class Sticker(Content, tag="sticker"):
    sticker_url: str | None = None
    mime_type: str | None = None


class Location(Content, tag="location"):
    latitude: Coordinate = None
    longitude: Coordinate = None
    address: str | None = None
    url: str | None = None
    name: str | None = None
    thumbnail_url: str | None = None


class Contact(Content, tag="contact"):
    display_name: str | None = None
    vcard: str | None = None
    phones: list[str] = msgspec.field(default_factory=list)


class ReferencedMessage(Struct, kw_only=True, gc=False):  # gc=False: as Content
    message_id: str | None = None
    from_me: bool | None = None
    phone: str | None = None
    participant: str | None = None


class Reaction(Content, tag="reaction"):
    emoji: str | None = None  # empty when a reaction is removed
    time: int | None = None
    reaction_by: str | None = None
    referenced_message: ReferencedMessage | None = None


class Notification(Content, tag="notification"):
    """A system notice (group change, call, label...) with no message content."""

    name: str | None = None
    parameters: list[Any] = msgspec.field(default_factory=list)


class Waiting(Content, tag="waiting"):
    """WhatsApp's "waiting for this message" placeholder: the content is not known yet."""


class Unknown(Content, tag="unknown"):
    """No content key we know of; the raw archive still has every byte."""


class Passthrough(Content, kw_only=True):
    """Kinds Plug passes through from WhatsApp's richer messages.

    Their fields are kept whole, keys turned to snake_case, rather than modelled
    one by one: nothing is lost, and a new sub-field needs no release.
    """

    fields: dict[str, Any] = msgspec.field(default_factory=dict)


class ButtonsResponse(Passthrough, tag="buttons_response"):
    pass


class ListResponse(Passthrough, tag="list_response"):
    pass


class Buttons(Passthrough, tag="buttons"):
    pass


class Template(Passthrough, tag="template"):
    pass


class Carousel(Passthrough, tag="carousel"):
    pass


class PixKey(Passthrough, tag="pix_key"):
    pass


class Poll(Passthrough, tag="poll"):
    pass


class PollVote(Passthrough, tag="poll_vote"):
    pass


class Event(Passthrough, tag="event"):
    pass


class EventResponse(Passthrough, tag="event_response"):
    pass


class Pin(Passthrough, tag="pin"):
    pass


class Product(Passthrough, tag="product"):
    pass


class Order(Passthrough, tag="order"):
    pass


class ReviewAndPay(Passthrough, tag="review_and_pay"):
    pass


class ReviewOrder(Passthrough, tag="review_order"):
    pass


class RequestPayment(Passthrough, tag="request_payment"):
    pass


class SendPayment(Passthrough, tag="send_payment"):
    pass


class NewsletterAdminInvite(Passthrough, tag="newsletter_admin_invite"):
    pass


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
    | ButtonsResponse
    | ListResponse
    | Buttons
    | Template
    | Carousel
    | PixKey
    | Poll
    | PollVote
    | Event
    | EventResponse
    | Pin
    | Product
    | Order
    | ReviewAndPay
    | ReviewOrder
    | RequestPayment
    | SendPayment
    | NewsletterAdminInvite
)

# Plug's content key -> the kind that carries its fields whole.
PASSTHROUGH_KINDS: dict[str, type[Passthrough]] = {
    "buttonsResponseMessage": ButtonsResponse,
    "listResponseMessage": ListResponse,
    "buttonsMessage": Buttons,
    "hydratedTemplate": Template,
    "carouselMessage": Carousel,
    "pixKeyMessage": PixKey,
    "poll": Poll,
    "pollVote": PollVote,
    "event": Event,
    "eventResponse": EventResponse,
    "pinMessage": Pin,
    "product": Product,
    "order": Order,
    "reviewAndPay": ReviewAndPay,
    "reviewOrder": ReviewOrder,
    "requestPayment": RequestPayment,
    "sendPayment": SendPayment,
    "newsletterAdminInvite": NewsletterAdminInvite,
}
