"""Plug's wire shapes -> our normalised events (pipeline.events.normalise)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from pipeline.events import content as c
from pipeline.events import normalise
from pipeline.ingest import ingest
from pipeline.plug import wire
from pipeline.plug.chat import ChatKey
from pipeline.webhooks import Webhook

_MESSAGE = msgspec.json.Decoder(wire.MessageWire, float_hook=Decimal)
_ATTENDANCE = msgspec.json.Decoder(wire.AttendanceWire, float_hook=Decimal)
_STATUS = msgspec.json.Decoder(wire.MessageStatusCallback)
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def wire_message(body: dict[str, Any]) -> wire.MessageWire:
    return _MESSAGE.decode(json.dumps(body).encode())


def wire_attendance(body: dict[str, Any]) -> wire.AttendanceWire:
    return _ATTENDANCE.decode(json.dumps({"attendanceNumber": 1, **body}).encode())


def content_of(body: dict[str, Any]) -> dict[str, Any]:
    """The message's content as it is written to Kafka (floats read back as Decimal)."""
    encoded = _ENCODER.encode(normalise.content(wire_message(body)))
    found: dict[str, Any] = json.loads(encoded, parse_float=Decimal)
    return found


def received_data(body: bytes) -> dict[str, Any]:
    record = ingest(Webhook.RECEIVE_MESSAGE, "acme", body, 1, "plug")
    data: dict[str, Any] = json.loads(record.value)["data"]
    return data


# -- status ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("MESSAGE_READ", "READ"),
        ("READ-SELF", "READ_BY_ME"),
        ("MESSAGE_RECEIVED", "RECEIVED"),
        ("MESSAGE_SENT", "SENT"),
        ("READ", "READ"),
        ("READ_BY_ME", "READ_BY_ME"),
        ("PLAYED", "PLAYED"),
        ("PENDING", "PENDING"),
        ("SOMETHING_NEW", "SOMETHING_NEW"),
        ("read", "read"),
        ("", ""),
    ],
)
def test_status_spellings(sent: str, expected: str) -> None:
    assert normalise.status(sent) == expected


def test_status_none_stays_none() -> None:
    assert normalise.status(None) is None


@pytest.mark.parametrize(
    ("sent", "expected"),
    [("MESSAGE_READ", "READ"), ("READ-SELF", "READ_BY_ME"), ("NEW_ONE", "NEW_ONE")],
)
def test_message_status_event_normalises_status(sent: str, expected: str) -> None:
    body = {"status": sent, "ids": ["a", "b"], "phone": "55", "momment": 1632234645000}
    callback = _STATUS.decode(json.dumps(body).encode())

    event = normalise.message_status(callback)

    assert event.status == expected
    assert event.message_ids == ["a", "b"]
    assert event.moment == 1632234645000


def test_message_status_in_a_message_is_normalised() -> None:
    assert normalise.message(wire_message({"status": "MESSAGE_RECEIVED"})).status == "RECEIVED"


# -- epoch_ms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1580163342, 1580163342000),  # the Disconnected example: seconds
        (1632228638000, 1632228638000),  # ms kept
        (99_999_999_999, 99_999_999_999_000),  # just below 1e11: seconds
        (100_000_000_000, 100_000_000_000),  # 1e11: ms
        (0, 0),
        (1580163342.5, 1580163342500),
        (1632228638000.0, 1632228638000),
        ("1632228638000", 1632228638000),
        ("1580163342", 1580163342000),
        ("1580163342.25", 1580163342250),
        (None, None),
        ("", None),
        ("not a time", None),
        (True, None),
    ],
)
def test_epoch_ms(value: Any, expected: int | None) -> None:
    result = normalise.epoch_ms(value)

    assert result == expected
    assert result is None or type(result) is int


def test_epoch_ms_of_a_numeric_string_too_large_for_a_float_is_not_an_overflow() -> None:
    """A string momment of 1e999 is no time; it must not raise OverflowError."""
    assert normalise.epoch_ms("1.0e999") is None
    assert normalise.epoch_ms("-1.0e999") is None


@pytest.mark.parametrize("field", ["momment", "moment"])
def test_message_moment_from_either_spelling(field: str) -> None:
    assert normalise.message(wire_message({field: 1632228638})).moment == 1632228638000


def test_message_prefers_momment_over_moment() -> None:
    msg = wire_message({"momment": 1632228638000, "moment": 1})
    assert normalise.message(msg).moment == 1632228638000


def test_attendance_times_are_ms() -> None:
    att = wire_attendance(
        {"startTime": 1651065471, "endTime": "1651065481865", "requestTime": 1651065472000}
    )

    event = normalise.attendance_finished(att, [])

    assert (event.start_time, event.end_time, event.request_time) == (
        1651065471000,
        1651065481865,
        1651065472000,
    )


# -- categories ------------------------------------------------------------------------

LEGACY = {"color": "#DDDD", "id": "id da categoria", "name": "nome da categoria"}
ITEM_A = {
    "categoryId": "c1",
    "categoryName": "Padrão",
    "color": "red",
    "itemId": "i1",
    "itemName": "Item 1",
}
ITEM_B = {
    "categoryId": "c2",
    "categoryName": "Outra",
    "color": "blue",
    "itemId": "i2",
    "itemName": "Item 2",
}


def category_dicts(att: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = msgspec.to_builtins(normalise.categories(wire_attendance(att)))
    return found


def test_categories_from_the_list_only() -> None:
    assert category_dicts({"attendanceCategories": [ITEM_A, ITEM_B]}) == [
        {
            "category_id": "c1",
            "category_name": "Padrão",
            "color": "red",
            "item_id": "i1",
            "item_name": "Item 1",
        },
        {
            "category_id": "c2",
            "category_name": "Outra",
            "color": "blue",
            "item_id": "i2",
            "item_name": "Item 2",
        },
    ]


def test_categories_from_the_legacy_object_only() -> None:
    assert category_dicts({"attendanceCategory": LEGACY}) == [
        {
            "category_id": "id da categoria",
            "category_name": "nome da categoria",
            "color": "#DDDD",
            "item_id": None,
            "item_name": None,
        }
    ]


def test_categories_both_formats_are_both_kept() -> None:
    found = category_dicts({"attendanceCategory": LEGACY, "attendanceCategories": [ITEM_A]})

    assert len(found) == 2
    assert {f["category_id"] for f in found} == {"id da categoria", "c1"}
    legacy = next(f for f in found if f["category_id"] == "id da categoria")
    assert legacy["item_id"] is None
    assert legacy["item_name"] is None


def test_categories_both_formats_naming_one_category_are_not_duplicated() -> None:
    same = {"id": ITEM_A["categoryId"], "name": ITEM_A["categoryName"], "color": ITEM_A["color"]}

    found = category_dicts({"attendanceCategory": same, "attendanceCategories": [ITEM_A]})

    assert found == [
        {
            "category_id": "c1",
            "category_name": "Padrão",
            "color": "red",
            "item_id": "i1",
            "item_name": "Item 1",
        }
    ]


def test_categories_repeated_in_the_list_are_kept_as_sent() -> None:
    """The seed's second example lists one category twice with different names."""
    assert len(category_dicts({"attendanceCategories": [ITEM_A, ITEM_A]})) == 2


@pytest.mark.parametrize(
    "att",
    [
        {},
        {"attendanceCategories": []},
        {"attendanceCategories": None},
        {"attendanceCategory": None},
    ],
)
def test_categories_neither_gives_an_empty_list(att: dict[str, Any]) -> None:
    assert category_dicts(att) == []


# -- attendance fields -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["operatorReport ", "operatorReport"])
def test_operator_report_with_and_without_trailing_space(key: str) -> None:
    event = normalise.attendance_finished(wire_attendance({key: "Relato do operador"}), [])
    assert event.operator_report == "Relato do operador"


def test_operator_report_prefers_plugs_spaced_key() -> None:
    att = wire_attendance({"operatorReport ": "spaced", "operatorReport": "plain"})
    assert normalise.attendance_finished(att, []).operator_report == "spaced"


def test_departament_becomes_department() -> None:
    att = wire_attendance({"departament": "Nome do departamento", "status": "FINISH"})

    finished = msgspec.to_builtins(normalise.attendance_finished(att, []))
    started = msgspec.to_builtins(normalise.attendance_started(att, []))

    for event in (finished, started):
        assert event["department"] == "Nome do departamento"
        assert "departament" not in event


def test_attendance_finished_fields() -> None:
    att = wire_attendance(
        {
            "attendanceNumber": 1492,
            "customer": {"name": "nome", "phone": "554499999999"},
            "finishBy": "Nome do operador",
            "ratingObservation": "Observação do cliente",
            "status": "FINISH",
        }
    )

    event = normalise.attendance_finished(att, [])

    assert event.attendance_number == 1492
    assert (event.customer.name, event.customer.phone) == ("nome", "554499999999")
    assert event.finished_by == "Nome do operador"
    assert event.rating_observation == "Observação do cliente"
    assert event.status == "FINISH"
    assert event.categories == []
    assert event.messages == []


def test_attendance_started_fields() -> None:
    att = wire_attendance(
        {"operator": "Nome do operador", "momment": 1651065472000, "status": "PROGRESS"}
    )

    event = normalise.attendance_started(att, [])

    assert event.operator == "Nome do operador"
    assert event.moment == 1651065472000
    assert event.status == "PROGRESS"


# -- content kinds ---------------------------------------------------------------------


def test_text_content() -> None:
    got = content_of(
        {
            "text": {
                "message": "m",
                "description": "d",
                "title": "t",
                "url": "u",
                "thumbnailUrl": "th",
            }
        }
    )
    assert got == {
        "kind": "text",
        "message": "m",
        "description": "d",
        "title": "t",
        "url": "u",
        "thumbnail_url": "th",
    }


def test_text_misspelt_descritpion_becomes_description() -> None:
    got = content_of({"text": {"message": "m", "descritpion": "from the doc example"}})
    assert got["description"] == "from the doc example"


def test_text_correct_description_wins_over_the_misspelt_one() -> None:
    got = content_of({"text": {"description": "right", "descritpion": "wrong"}})
    assert got["description"] == "right"


def test_image_content() -> None:
    got = content_of(
        {
            "image": {
                "imageUrl": "https://img",
                "thumbnailUrl": "https://th",
                "mimeType": "image/jpeg",
                "caption": "c",
                "width": 600,
                "height": 315,
                "viewOnce": True,
                "downloadError": "expired",
            }
        }
    )
    assert got == {
        "kind": "image",
        "image_url": "https://img",
        "thumbnail_url": "https://th",
        "mime_type": "image/jpeg",
        "caption": "c",
        "width": 600,
        "height": 315,
        "view_once": True,
        "download_error": "expired",
    }


def test_status_image_lowercase_mimetype() -> None:
    msg = normalise.message(
        wire_message(
            {
                "isStatusReply": True,
                "text": {"message": "teste"},
                "statusImage": {"imageUrl": "https://", "mimetype": "image/jpeg", "width": 1080},
            }
        )
    )

    assert msg.status_image is not None
    assert msg.status_image.mime_type == "image/jpeg"
    assert msg.status_image.width == 1080
    assert msg.is_status_reply is True
    assert isinstance(msg.content, c.Text)


def test_image_lowercase_mimetype_is_also_read() -> None:
    assert content_of({"image": {"mimetype": "image/png"}})["mime_type"] == "image/png"


@pytest.mark.parametrize("ptt", [True, False])
def test_audio_ptt_becomes_voice_note(ptt: bool) -> None:
    got = content_of(
        {
            "audio": {
                "ptt": ptt,
                "seconds": 10,
                "audioUrl": "https://a",
                "mimeType": "audio/ogg; codecs=opus",
                "viewOnce": True,
            }
        }
    )
    assert got == {
        "kind": "audio",
        "audio_url": "https://a",
        "mime_type": "audio/ogg; codecs=opus",
        "voice_note": ptt,
        "seconds": 10,
        "view_once": True,
    }


def test_video_document_sticker_contact() -> None:
    assert content_of({"video": {"videoUrl": "v", "seconds": 3}})["kind"] == "video"
    doc = content_of({"document": {"documentUrl": "d", "fileName": "f.pdf", "pageCount": 1}})
    assert (doc["kind"], doc["file_name"], doc["page_count"]) == ("document", "f.pdf", 1)
    assert content_of({"document": {"pageCount": "12"}})["page_count"] == "12"
    sticker = content_of({"sticker": {"stickerUrl": "s", "mimeType": "image/webp"}})
    assert sticker == {"kind": "sticker", "sticker_url": "s", "mime_type": "image/webp"}
    contact = content_of(
        {"contact": {"displayName": "Cesar", "vCard": "BEGIN:VCARD", "phones": ["55"]}}
    )
    assert contact == {
        "kind": "contact",
        "display_name": "Cesar",
        "vcard": "BEGIN:VCARD",
        "phones": ["55"],
    }
    assert content_of({"contact": {}})["phones"] == []


def test_location_keeps_over_precise_coordinates_digit_for_digit() -> None:
    body = (
        '{"phone":"5544999999999","type":"ReceivedCallback","location":'
        '{"longitude": -99.999999999999999, "latitude": -99.9999999999999999,'
        ' "address": "", "url": "", "name": "Praça"}}'
    ).encode()

    record = ingest(Webhook.RECEIVE_MESSAGE, "acme", body, 1, "plug")

    assert b'"latitude":-99.9999999999999999' in record.value
    assert b'"longitude":-99.999999999999999' in record.value
    got = json.loads(record.value, parse_float=Decimal)["data"]["content"]
    assert got["kind"] == "location"
    assert got["latitude"] == Decimal("-99.9999999999999999")
    assert got["longitude"] == Decimal("-99.999999999999999")
    assert got["name"] == "Praça"


def test_location_integer_coordinates_stay_numbers() -> None:
    got = received_data(b'{"phone":"1","location":{"latitude":-23,"longitude":-46.5}}')["content"]
    assert (got["latitude"], got["longitude"]) == (-23, -46.5)


def test_reaction_content() -> None:
    got = content_of(
        {
            "reaction": {
                "value": "❤️",
                "time": 1651878681150,
                "reactionBy": "554499999999",
                "referencedMessage": {
                    "messageId": "3EB0796DC6B777C0C7CD",
                    "fromMe": True,
                    "phone": "5544999999999",
                    "participant": None,
                },
            }
        }
    )
    assert got == {
        "kind": "reaction",
        "emoji": "❤️",
        "time": 1651878681150,
        "reaction_by": "554499999999",
        "referenced_message": {
            "message_id": "3EB0796DC6B777C0C7CD",
            "from_me": True,
            "phone": "5544999999999",
            "participant": None,
        },
    }


def test_removed_reaction_keeps_the_empty_emoji_and_scales_seconds() -> None:
    got = content_of({"reaction": {"value": "", "time": 1651878681}})
    assert got["emoji"] == ""
    assert got["time"] == 1651878681000
    assert got["referenced_message"] is None


PASSTHROUGH = [
    ("buttonsResponseMessage", "buttons_response"),
    ("listResponseMessage", "list_response"),
    ("buttonsMessage", "buttons"),
    ("hydratedTemplate", "template"),
    ("carouselMessage", "carousel"),
    ("pixKeyMessage", "pix_key"),
    ("poll", "poll"),
    ("pollVote", "poll_vote"),
    ("event", "event"),
    ("eventResponse", "event_response"),
    ("pinMessage", "pin"),
    ("product", "product"),
    ("order", "order"),
    ("reviewAndPay", "review_and_pay"),
    ("reviewOrder", "review_order"),
    ("requestPayment", "request_payment"),
    ("sendPayment", "send_payment"),
    ("newsletterAdminInvite", "newsletter_admin_invite"),
]


def test_passthrough_table_covers_every_passthrough_kind() -> None:
    assert sorted(key for key, _ in PASSTHROUGH) == sorted(c.PASSTHROUGH_KINDS)


@pytest.mark.parametrize(("key", "kind"), PASSTHROUGH)
def test_passthrough_kinds_keep_fields_with_snake_case_keys(key: str, kind: str) -> None:
    fields = {
        "pollMaxOptions": 0,
        "selectedRowId": "1",
        "hydratedButtons": [{"urlButton": {"displayText": "Copiar", "url": "https://x"}}],
        "paymentInfo": {"receiverPhone": "55", "transactionStatus": "SUCCESS"},
        "type": "physical-goods",
        "price": 1.25,
        "values": ["camelCase stays", {"innerKey": None}],
    }

    got = content_of({key: fields})

    assert got == {
        "kind": kind,
        "fields": {
            "poll_max_options": 0,
            "selected_row_id": "1",
            "hydrated_buttons": [{"url_button": {"display_text": "Copiar", "url": "https://x"}}],
            "payment_info": {"receiver_phone": "55", "transaction_status": "SUCCESS"},
            "type": "physical-goods",
            "price": Decimal("1.25"),
            "values": ["camelCase stays", {"inner_key": None}],
        },
    }


def test_passthrough_empty_object_is_still_its_kind() -> None:
    assert content_of({"hydratedTemplate": {}}) == {"kind": "template", "fields": {}}


def test_notification_with_string_parameters() -> None:
    got = content_of({"notification": "GROUP_PARTICIPANT_ADD", "notificationParameters": ["5544"]})
    assert got == {"kind": "notification", "name": "GROUP_PARTICIPANT_ADD", "parameters": ["5544"]}


def test_notification_with_object_parameters_and_message_fields() -> None:
    msg = normalise.message(
        wire_message(
            {
                "notification": "CHAT_LABEL_ASSOCIATION",
                "notificationParameters": [{"phone": "55", "label": "1", "assigned": True}],
            }
        )
    )

    assert msgspec.to_builtins(msg.content) == {
        "kind": "notification",
        "name": "CHAT_LABEL_ASSOCIATION",
        "parameters": [{"phone": "55", "label": "1", "assigned": True}],
    }
    assert msg.notification == "CHAT_LABEL_ASSOCIATION"
    assert msg.notification_parameters == [{"phone": "55", "label": "1", "assigned": True}]


def test_notification_without_parameters_has_an_empty_list() -> None:
    assert content_of({"notification": "E2E_ENCRYPTED"})["parameters"] == []


def test_waiting_message() -> None:
    msg = normalise.message(wire_message({"waitingMessage": True, "viewOnce": True}))

    assert msgspec.to_builtins(msg.content) == {"kind": "waiting"}
    assert msg.is_waiting is True
    assert msg.view_once is True


@pytest.mark.parametrize("body", [{}, {"waitingMessage": False}, {"somethingNew": {"a": 1}}])
def test_unknown_content(body: dict[str, Any]) -> None:
    assert content_of(body) == {"kind": "unknown"}


def test_first_content_key_wins_in_documented_order() -> None:
    got = content_of({"image": {"imageUrl": "i"}, "text": {"message": "m"}})
    assert got["kind"] == "text"


# -- message fields --------------------------------------------------------------------


def test_message_fields_are_snake_case() -> None:
    msg = msgspec.to_builtins(
        normalise.message(
            wire_message(
                {
                    "messageId": "M1",
                    "phone": "55",
                    "fromMe": True,
                    "isGroup": False,
                    "isAutomaticMessage": True,
                    "instanceId": "I",
                    "chatName": "chat",
                    "senderName": "sender",
                    "participantPhone": "5511",
                    "messageExpirationSeconds": 0,
                    "broadcastRecipients": ["1", "2"],
                    "externalAdReply": {"ctwaClid": "x", "mediaType": 1},
                    "text": {"message": "m"},
                }
            )
        )
    )

    assert msg["message_id"] == "M1"
    assert msg["from_me"] is True
    assert msg["is_group"] is False
    assert msg["is_automatic"] is True
    assert msg["instance_id"] == "I"
    assert msg["chat_name"] == "chat"
    assert msg["sender_name"] == "sender"
    assert msg["participant_phone"] == "5511"
    assert msg["expiration_seconds"] == 0
    assert msg["broadcast_recipients"] == ["1", "2"]
    assert msg["external_ad"] == {"ctwa_clid": "x", "media_type": 1}


def test_absent_lists_are_empty_not_null() -> None:
    msg = normalise.message(wire_message({}))

    assert msg.broadcast_recipients == []
    assert msg.notification_parameters == []
    assert msg.external_ad is None


# -- transcript ------------------------------------------------------------------------


def entry(key: str, **fields: Any) -> tuple[str, wire.MessageWire]:
    return key, wire_message(fields)


def chat(entries: list[tuple[str, wire.MessageWire]]) -> dict[ChatKey, wire.MessageWire]:
    """A decoded chat: one ChatKey an entry, so a repeated key stays two entries."""
    return {ChatKey(key): message for key, message in entries}


def test_transcript_orders_by_moment_then_message_id() -> None:
    entries = [
        entry("k1", messageId="b", momment=2000_000_000_000),
        entry("k2", messageId="z", momment=1000_000_000_000),
        entry("k3", messageId="a", momment=2000_000_000_000),
        entry("k4", messageId="c", momment=1500_000_000),  # seconds: 1.5e12 ms
    ]

    got = [(m.message_id, m.moment) for m in normalise.transcript(chat(entries))]

    assert got == [
        ("z", 1000_000_000_000),
        ("c", 1500_000_000_000),
        ("a", 2000_000_000_000),
        ("b", 2000_000_000_000),
    ]


def test_transcript_uses_the_chat_key_when_the_body_has_no_message_id() -> None:
    entries = [
        entry("KEY_B", momment=2),
        entry("KEY_A", momment=1),
        entry("K", messageId="ID", momment=3),
    ]

    got = [m.message_id for m in normalise.transcript(chat(entries))]

    assert got == ["KEY_A", "KEY_B", "ID"]


def test_transcript_keeps_messages_with_one_id_and_one_moment() -> None:
    entries = [
        entry("X", messageId="X", momment=5, text={"message": "first"}),
        entry("X", messageId="X", momment=5, text={"message": "second"}),
    ]

    got = normalise.transcript(chat(entries))

    assert len(got) == 2
    assert sorted(str(m.content.message) for m in got if isinstance(m.content, c.Text)) == [
        "first",
        "second",
    ]


def test_transcript_message_without_moment_sorts_first() -> None:
    entries = [entry("b", momment=1000), entry("a")]

    got = normalise.transcript(chat(entries))

    assert [(m.message_id, m.moment) for m in got] == [("a", None), ("b", 1000_000)]


def test_transcript_of_nothing_is_empty() -> None:
    assert normalise.transcript({}) == []


# -- snake -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pollMaxOptions", "poll_max_options"),
        ("ctwaClid", "ctwa_clid"),
        ("vCard", "v_card"),
        ("already_snake", "already_snake"),
        ("x", "x"),
        ("mediaType2", "media_type2"),
    ],
)
def test_snake(name: str, expected: str) -> None:
    assert normalise.snake(name) == expected
