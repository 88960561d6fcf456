"""The simulated Plug traffic: reproducible, complete, and shaped like Plug's payloads."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import orjson
import pytest

from pipeline.simulate.generator import Generator
from pipeline.webhooks import Webhook

N = 600

Decoded = list[tuple[Webhook, dict[str, Any]]]

CALLBACK_TYPES = {
    Webhook.RECEIVE_MESSAGE: "ReceivedCallback",
    Webhook.SENDING_MESSAGE: "DeliveryCallback",
    Webhook.MESSAGE_DELIVERY_ERROR: "DeliveryCallback",
    Webhook.MESSAGE_STATUS: "MessageStatusCallback",
    Webhook.WHEN_DISCONNECTING: "DisconnectedCallback",
}
STATUSES = {"SENT", "RECEIVED", "READ", "PLAYED", "MESSAGE_READ", "READ-SELF"}


@pytest.fixture(scope="module")
def decoded() -> Decoded:
    return [(webhook, orjson.loads(body)) for webhook, body in Generator(7).take(N)]


def test_same_seed_gives_the_same_bytes() -> None:
    assert Generator(42).take(300) == Generator(42).take(300)
    assert Generator(42).take(300) != Generator(43).take(300)


def test_helpers_are_deterministic_and_do_not_shift_the_stream() -> None:
    a, b = Generator(5), Generator(5)
    a.receive_message_body()
    a.finish_attendance_body(10)
    a.message_status_body()
    assert a.take(50) == b.take(50)
    for name in ("receive_message_body", "message_status_body"):
        assert getattr(Generator(9), name)() == getattr(Generator(9), name)()
    assert Generator(9).finish_attendance_body(40) == Generator(9).finish_attendance_body(40)


def test_every_kind_appears(decoded: Decoded) -> None:
    assert set(Counter(webhook for webhook, _ in decoded)) == set(Webhook)


def test_callbacks_carry_their_type(decoded: Decoded) -> None:
    for webhook, body in decoded:
        if webhook in CALLBACK_TYPES:
            assert body["type"] == CALLBACK_TYPES[webhook]
        else:
            assert "type" not in body
            assert set(body) == {"attendance", "chat"}
            assert isinstance(body["chat"], dict)


def test_times_advance(decoded: Decoded) -> None:
    moments = [
        body["momment"] * 1000 if webhook is Webhook.WHEN_DISCONNECTING else body["momment"]
        for webhook, body in decoded
        if "momment" in body
    ]
    # Disconnect times are whole seconds, so allow them to round down.
    assert all(b >= a - 999 for a, b in itertools.pairwise(moments))
    disconnect = next(b for w, b in decoded if w is Webhook.WHEN_DISCONNECTING)
    assert disconnect["momment"] < 1e11  # seconds, as in Plug's example
    assert disconnect["disconnected"] is True


def test_messages_are_plug_shaped(decoded: Decoded) -> None:
    kinds: Counter[str] = Counter()
    for webhook, body in decoded:
        if webhook is not Webhook.RECEIVE_MESSAGE:
            continue
        content = {"text", "image", "audio", "document", "location", "reaction"} & set(body)
        assert len(content) == 1
        kinds.update(content)
        phone = body["phone"]
        if body["isGroup"]:
            assert phone.endswith("-group")
            assert body["participantPhone"].startswith("55")
        else:
            assert phone.startswith("55")
            assert len(phone) == 13
            assert phone.isdigit()
            assert body["participantPhone"] is None
        if "audio" in body:
            assert body["audio"]["ptt"] is True
    assert set(kinds) == {"text", "image", "audio", "document", "location", "reaction"}
    assert any(body.get("isGroup") for w, body in decoded if w is Webhook.RECEIVE_MESSAGE)


def test_attendances_have_plug_quirks(decoded: Decoded) -> None:
    forms: Counter[str] = Counter()
    for webhook, body in decoded:
        attendance = body.get("attendance")
        if attendance is None:
            continue
        assert "departament" in attendance
        if webhook is Webhook.START_ATTENDANCE:
            assert attendance["status"] == "PROGRESS"
            assert {"operator", "momment", "startTime"} <= set(attendance)
            continue
        assert attendance["status"] == "FINISH"
        assert "operatorReport " in attendance
        assert "operatorReport" not in attendance
        assert attendance["finishBy"]
        has_legacy = "attendanceCategory" in attendance
        has_list = "attendanceCategories" in attendance
        forms[
            {(1, 0): "legacy", (0, 1): "list", (1, 1): "both", (0, 0): "none"}[has_legacy, has_list]
        ] += 1
        if has_legacy:
            assert set(attendance["attendanceCategory"]) == {"color", "id", "name"}
        for category in attendance.get("attendanceCategories", []):
            assert set(category) == {"categoryId", "categoryName", "color", "itemId", "itemName"}
    assert set(forms) == {"legacy", "list", "both", "none"}


def test_statuses_follow_sent_messages(decoded: Decoded) -> None:
    sent: set[str] = set()
    failed: set[str] = set()
    seen_statuses: set[str] = set()
    for webhook, body in decoded:
        if webhook is Webhook.SENDING_MESSAGE:
            assert "error" not in body
            sent.add(body["messageId"])
        elif webhook is Webhook.MESSAGE_DELIVERY_ERROR:
            assert body["error"]
            assert body.get("errorCode", "SHADOW_BAN") == "SHADOW_BAN"
            failed.add(body["messageId"])
        elif webhook is Webhook.MESSAGE_STATUS:
            assert body["ids"]
            assert set(body["ids"]) <= sent
            assert body["status"] in STATUSES
            seen_statuses.add(body["status"])
    assert not sent & failed
    assert {"SENT", "RECEIVED", "READ", "PLAYED"} <= seen_statuses


def test_transcript_holds_the_conversation(decoded: Decoded) -> None:
    inbound: dict[str, list[str]] = {}
    outbound: dict[str, list[str]] = {}
    finished = 0
    for webhook, body in decoded:
        if webhook is Webhook.RECEIVE_MESSAGE:
            inbound.setdefault(body["phone"], []).append(body["messageId"])
        elif webhook in (Webhook.SENDING_MESSAGE, Webhook.MESSAGE_DELIVERY_ERROR):
            outbound.setdefault(body["phone"], []).append(body["messageId"])
        elif webhook is Webhook.FINISH_ATTENDANCE:
            finished += 1
            phone = body["attendance"]["customer"]["phone"]
            chat = body["chat"]
            expected = inbound.pop(phone, []) + outbound.pop(phone, [])
            assert sorted(chat) == sorted(expected)
            for message_id, message in chat.items():
                assert message["messageId"] == message_id
                assert message["phone"] == phone
                if message["fromMe"]:
                    assert "isAutomaticMessage" in message
                else:
                    assert message["type"] == "ReceivedCallback"
    assert finished > 5


def test_reactions_reference_earlier_messages(decoded: Decoded) -> None:
    seen: set[str] = set()
    reactions = 0
    for webhook, body in decoded:
        if webhook is Webhook.RECEIVE_MESSAGE and "reaction" in body:
            reactions += 1
            assert body["reaction"]["referencedMessage"]["messageId"] in seen
        if "messageId" in body:
            seen.add(body["messageId"])
    assert reactions


def test_benchmark_helpers() -> None:
    gen = Generator(3)
    body = gen.receive_message_body(size_hint=1024)
    assert 900 <= len(body) <= 1150
    assert orjson.loads(body)["type"] == "ReceivedCallback"
    assert len(gen.receive_message_body(size_hint=8192)) >= 8000
    status = orjson.loads(gen.message_status_body())
    assert status["type"] == "MessageStatusCallback"
    assert len(status["ids"]) == 1
    for n in (40, 400):
        finish = orjson.loads(gen.finish_attendance_body(n))
        assert len(finish["chat"]) == n
        assert finish["attendance"]["status"] == "FINISH"
