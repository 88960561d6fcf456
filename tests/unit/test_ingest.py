"""``ingest``: one webhook body -> one Kafka record; ``deadletter`` for the rest.

Every documentation payload under tests/fixtures/plug/<webhook>/ must be accepted by its
webhook, routed to the right topic and key, and lose none of its content.
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import Malformed, Rejected
from pipeline.ingest import deadletter, event_id, ingest
from pipeline.record import Record
from pipeline.webhooks import Webhook
from tests.support.payloads import FIXTURES, corpus_files

SEED = FIXTURES / "seed"
WEBHOOK_DIRS = [w.value for w in Webhook]
PAYLOADS = sorted(p for p in FIXTURES.glob("*/*.json") if p.parent.name in WEBHOOK_DIRS)
RECEIVED_AT = 1_700_000_000_123
TENANT = "acme"
HEX32 = re.compile(r"[0-9a-f]{32}")

# The event type each webhook's payloads become (a DeliveryCallback with `error` aside).
EVENT_TYPE = {
    "finish-attendance": "attendance.finished",
    "start-attendance": "attendance.started",
    "receive-message": "message.received",
    "sending-message": "message.sent",
    "message-delivery-error": "message.delivery_failed",
    "message-status": "message.status",
    "when-disconnecting": "instance.disconnected",
}
ATTENDANCES = {"finish-attendance", "start-attendance"}

# Documented transformations the content check allows.
CALLBACK_TYPES = {
    "receivedcallback",
    "deliverycallback",
    "messagestatuscallback",
    "disconnectedcallback",
}
STATUS_SPELLINGS = {
    "MESSAGE_SENT": "SENT",
    "MESSAGE_RECEIVED": "RECEIVED",
    "MESSAGE_READ": "READ",
    "READ-SELF": "READ_BY_ME",
}
TIME_FIELDS = {"momment", "moment", "time", "startTime", "endTime", "requestTime"}
# Plug's docs repeat these scalar fields; msgspec keeps the last value, the first may go.
DUPLICATE_SCALAR_EXEMPT = {"instanceId", "thumbnailUrl"}


def test_fixture_set_is_complete() -> None:
    # every payload on disk is filed under a webhook this code serves, and there are some
    assert PAYLOADS
    assert corpus_files() == PAYLOADS
    assert {p.parent.name for p in PAYLOADS} == set(WEBHOOK_DIRS) - {"message-delivery-error"}


# -- reading JSON with every value of a repeated key -------------------------------------


class Pairs(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, repeated keys included."""


def all_pairs(body: bytes) -> Any:
    return json.loads(body, object_pairs_hook=Pairs, parse_float=Decimal)


def last_wins(body: bytes) -> Any:
    return json.loads(body, parse_float=Decimal)


Leaf = tuple[str, Any]


def leaf(value: Any) -> Leaf | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, Decimal):
        return ("num", value)
    return ("str", value)


def output_leaves(value: Any, into: set[Leaf]) -> set[Leaf]:
    if isinstance(value, dict):
        for v in value.values():
            output_leaves(v, into)
    elif isinstance(value, list):
        for v in value:
            output_leaves(v, into)
    elif (found := leaf(value)) is not None:
        into.add(found)
    return into


def input_leaves(value: Any, key: str | None = None):  # type: ignore[no-untyped-def]
    """(field name, leaf) of every scalar, skipping earlier copies of exempt repeated fields."""
    if isinstance(value, Pairs):
        last = {k: i for i, (k, _) in enumerate(value)}
        for i, (k, v) in enumerate(value):
            repeated_scalar = last[k] != i and not isinstance(v, (Pairs, list))
            if repeated_scalar and k in DUPLICATE_SCALAR_EXEMPT:
                continue
            yield from input_leaves(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from input_leaves(v, key)
    elif (found := leaf(value)) is not None:
        yield key, found


def expected_leaf(key: str | None, found: Leaf) -> Leaf | None:
    """The leaf the output must hold for one input leaf; None when nothing is owed."""
    kind, value = found
    if key == "type" and kind == "str" and value.lower() in CALLBACK_TYPES:
        return None  # implied by the topic
    if key == "status" and kind == "str" and value in STATUS_SPELLINGS:
        return ("str", STATUS_SPELLINGS[value])
    if key in TIME_FIELDS and kind == "int" and abs(value) < 100_000_000_000:
        return ("int", value * 1000)
    return found


def chat_messages(body: bytes) -> list[tuple[str, Pairs]]:
    top = dict(all_pairs(body))
    chat = top.get("chat", Pairs())
    return list(chat)


# -- helpers ---------------------------------------------------------------------------


def run(webhook: Webhook | str, body: bytes, tenant: str = TENANT, prefix: str = "plug") -> Record:
    return ingest(Webhook(webhook), tenant, body, RECEIVED_AT, prefix)


def envelope(record: Record) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(record.value, parse_float=Decimal)
    return value


def headers(record: Record) -> dict[str, bytes]:
    names = [name for name, _ in record.headers]
    assert len(names) == len(set(names)), f"repeated header in {names}"
    return dict(record.headers)


def expected_event_type(webhook: str, doc: dict[str, Any]) -> str:
    if webhook in {"sending-message", "message-delivery-error"} and doc.get("error") is not None:
        return "message.delivery_failed"
    return EVENT_TYPE[webhook]


def expected_identity(webhook: str, doc: dict[str, Any]) -> str:
    if webhook in ATTENDANCES:
        identity = doc["attendance"]["customer"]["phone"]
    elif webhook == "when-disconnecting":
        identity = doc.get("instanceId") or ""
    else:
        identity = doc["phone"]
    return str(identity)


def fixture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


# -- every documentation payload -------------------------------------------------------


@pytest.mark.parametrize("path", PAYLOADS, ids=fixture_id)
def test_payload_is_accepted_with_topic_key_headers_and_envelope(path: Path) -> None:
    webhook = path.parent.name
    body = path.read_bytes()
    doc = last_wins(body)

    record = run(webhook, body)

    event_type = expected_event_type(webhook, doc)
    assert record.topic == "plug." + event_type.replace("_", "-")
    assert record.key == f"{TENANT}:{expected_identity(webhook, doc)}".encode()
    assert HEX32.fullmatch(record.event_id)
    assert headers(record) == {
        "event-type": event_type.encode(),
        "event-id": record.event_id.encode(),
        "schema-version": b"1",
        "tenant": TENANT.encode(),
        "content-type": b"application/json",
        "webhook": webhook.encode(),
    }
    env = envelope(record)
    assert set(env) == {
        "event_id",
        "event_type",
        "schema_version",
        "tenant",
        "received_at",
        "data",
    }
    assert env["event_id"] == record.event_id
    assert env["event_type"] == event_type
    assert env["schema_version"] == 1
    assert env["tenant"] == TENANT
    assert env["received_at"] == RECEIVED_AT
    assert isinstance(env["data"], dict)
    assert env["data"]


@pytest.mark.parametrize("path", PAYLOADS, ids=fixture_id)
def test_payload_loses_no_content(path: Path) -> None:
    body = path.read_bytes()
    present = output_leaves(envelope(run(path.parent.name, body))["data"], set())

    missing = []
    for key, found in input_leaves(all_pairs(body)):
        owed = expected_leaf(key, found)
        if owed is not None and owed not in present:
            missing.append((key, found, owed))

    assert missing == []


@pytest.mark.parametrize(
    "path", [p for p in PAYLOADS if p.parent.name in ATTENDANCES], ids=fixture_id
)
def test_attendance_keeps_every_message_of_its_chat(path: Path) -> None:
    body = path.read_bytes()
    sent = chat_messages(body)

    messages = envelope(run(path.parent.name, body))["data"]["messages"]

    assert len(messages) == len(sent)
    want: collections.Counter[tuple[Any, ...]] = collections.Counter()
    for key, msg in sent:
        fields = dict(msg)
        text = dict(fields.get("text") or {}).get("message")
        want[(fields.get("messageId", key), fields.get("momment"), text)] += 1
    got = collections.Counter(
        (m["message_id"], m["moment"], m["content"].get("message")) for m in messages
    )
    assert got == want


@pytest.mark.parametrize("webhook", ["sending-message", "message-delivery-error"])
def test_delivery_with_error_is_a_failure_whichever_url_received_it(webhook: str) -> None:
    doc = last_wins((FIXTURES / "sending-message" / "delivery.json").read_bytes())
    doc["error"] = "Phone number does not exist"
    doc["errorCode"] = "SHADOW_BAN"

    record = run(webhook, json.dumps(doc).encode())

    assert record.topic == "plug.message.delivery-failed"
    assert headers(record)["event-type"] == b"message.delivery_failed"
    data = envelope(record)["data"]
    assert data["error"] == "Phone number does not exist"
    assert data["error_code"] == "SHADOW_BAN"
    assert data["message_id"] == doc["messageId"]
    assert data["zaap_id"] == doc["zaapId"]
    assert record.key == b"acme:554499999999"


def test_delivery_without_error_is_sent() -> None:
    record = run("sending-message", (FIXTURES / "sending-message" / "delivery.json").read_bytes())

    assert record.topic == "plug.message.sent"
    assert envelope(record)["data"]["error"] is None


def test_status_callback_data() -> None:
    record = run("message-status", (FIXTURES / "message-status" / "read-self.json").read_bytes())

    assert envelope(record)["data"] == {
        "status": "READ_BY_ME",
        "message_ids": ["999999999999999999999"],
        "phone": "5544999999999",
        "instance_id": "instance.id",
        "moment": 1632234645000,
        "is_group": False,
        "phone_device": 0,
    }


def test_disconnected_seconds_become_ms_and_key_is_the_instance() -> None:
    record = run(
        "when-disconnecting", (FIXTURES / "when-disconnecting" / "disconnected.json").read_bytes()
    )

    assert record.key == b"acme:instance.id"
    assert envelope(record)["data"] == {
        "instance_id": "instance.id",
        "disconnected": True,
        "error": "Device has been disconnected",
        "moment": 1580163342000,
    }


def test_topic_prefix_is_configurable() -> None:
    body = (FIXTURES / "message-status" / "read.json").read_bytes()

    assert run("message-status", body, prefix="acme.plug").topic == "acme.plug.message.status"


# -- the seed's own examples, byte for byte --------------------------------------------


def seed(name: str) -> bytes:
    body = (SEED / name).read_bytes()
    # The documentation's quirk must survive in the fixture: the chat repeats one key.
    assert body.count(b'"ID_DA_MENSAGEM": {') == 2
    return body


SEED_MESSAGES = [
    ("ID_DA_MENSAGEM", 1651065478000, "mensagem enviada", False, "RECEIVED"),
    ("ID_DA_MENSAGEM", 1651065479380, "só um momento", True, "READ"),
]


def transcript(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (m["message_id"], m["moment"], m["content"]["message"], m["from_me"], m["status"])
        for m in data["messages"]
    ]


def test_seed_finish_attendance_example_1() -> None:
    record = run("finish-attendance", seed("finish-attendance-example-1.json"))

    data = envelope(record)["data"]
    assert record.topic == "plug.attendance.finished"
    assert record.key == b"acme:554499999999"
    assert transcript(data) == SEED_MESSAGES
    assert data["messages"][0]["content"]["kind"] == "text"
    assert data["messages"][1]["is_automatic"] is True
    assert data["categories"] == [
        {
            "category_id": "id da categoria",
            "category_name": "nome da categoria",
            "color": "#DDDD",
            "item_id": None,
            "item_name": None,
        }
    ]
    assert data["attendance_number"] == 1492
    assert data["customer"] == {"name": "nome", "phone": "554499999999"}
    assert data["department"] == "Nome do departamento"
    assert data["finished_by"] == "Nome do operador"
    assert data["operator_report"] == "Relato do operador"
    assert data["rating_observation"] == "Observação do cliente"
    assert (data["request_time"], data["start_time"], data["end_time"]) == (
        1651065472000,
        1651065471166,
        1651065481865,
    )
    assert data["status"] == "FINISH"


def test_seed_finish_attendance_example_2() -> None:
    data = envelope(run("finish-attendance", seed("finish-attendance-example-2.json")))["data"]

    assert transcript(data) == SEED_MESSAGES
    assert data["categories"] == [
        {
            "category_id": "id_categoria",
            "category_name": "Padrão",
            "color": "cor_categoria",
            "item_id": "id_item_vinculado_na_categoria",
            "item_name": "Nome do item",
        },
        {
            "category_id": "id_categoria",
            "category_name": "nome_categoria",
            "color": "cor_categoria",
            "item_id": "id_item_vinculado_na_categoria",
            "item_name": "Nome do item",
        },
    ]


def test_seed_start_attendance() -> None:
    record = run("start-attendance", seed("start-attendance.json"))

    data = envelope(record)["data"]
    assert record.topic == "plug.attendance.started"
    assert record.key == b"acme:554499999999"
    assert transcript(data) == SEED_MESSAGES
    assert data["operator"] == "Nome do operador"
    assert data["moment"] == 1651065472000
    assert data["start_time"] == 1651065471166
    assert data["status"] == "PROGRESS"
    assert data["department"] == "Nome do departamento"


@pytest.mark.parametrize("webhook", WEBHOOK_DIRS)
def test_seed_update_webhooks_request_is_no_webhook(webhook: str) -> None:
    """The configuration call's body is not what any webhook sends."""
    with pytest.raises(Malformed) as caught:
        run(webhook, (SEED / "update-webhooks-request.json").read_bytes())

    assert caught.value.reason == "invalid_shape"


# -- event id --------------------------------------------------------------------------


def test_same_body_twice_gives_the_same_event_id() -> None:
    body = (FIXTURES / "receive-message" / "text.json").read_bytes()

    first, second = run("receive-message", body), run("receive-message", body)

    assert first.event_id == second.event_id
    assert first.value == second.value
    assert first.event_id == event_id(TENANT, Webhook.RECEIVE_MESSAGE, body)


def test_different_tenant_gives_a_different_event_id_and_key() -> None:
    body = (FIXTURES / "receive-message" / "text.json").read_bytes()

    acme, globex = run("receive-message", body, "acme"), run("receive-message", body, "globex")

    assert acme.event_id != globex.event_id
    assert acme.key == b"acme:5544999999999"
    assert globex.key == b"globex:5544999999999"
    assert envelope(globex)["tenant"] == "globex"
    assert headers(globex)["tenant"] == b"globex"


def test_different_webhook_or_body_gives_a_different_event_id() -> None:
    body = (FIXTURES / "sending-message" / "delivery.json").read_bytes()

    ids = {
        event_id(TENANT, Webhook.SENDING_MESSAGE, body),
        event_id(TENANT, Webhook.MESSAGE_DELIVERY_ERROR, body),
        event_id(TENANT, Webhook.SENDING_MESSAGE, body + b" "),
    }

    assert len(ids) == 3


def test_event_id_fields_cannot_run_into_each_other() -> None:
    body = b'{"status":"READ","ids":[]}'

    assert event_id("ab", Webhook.MESSAGE_STATUS, body) != event_id(
        "a", Webhook.MESSAGE_STATUS, b"b" + body
    )


# -- malformed bodies ------------------------------------------------------------------

RECEIVED = (FIXTURES / "receive-message" / "text.json").read_bytes()


def malformed(webhook: str, body: bytes) -> Malformed:
    with pytest.raises(Malformed) as caught:
        run(webhook, body)
    assert isinstance(caught.value, Rejected)
    assert caught.value.status == 400
    assert caught.value.detail
    return caught.value


@pytest.mark.parametrize("webhook", WEBHOOK_DIRS)
@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"{", b'{"phone": "1",}', b"{'phone': '1'}", b'{"a":1}{"b":2}', b"\xff"],
)
def test_not_json_is_invalid_json(webhook: str, body: bytes) -> None:
    assert malformed(webhook, body).reason == "invalid_json"


# Invalid UTF-8 in a field every webhook reads, in one it skips, and in a chat message.
INVALID_UTF8 = {
    "finish-attendance": b'{"attendance": {"attendanceNumber": 1, "departament": "\xff"}}',
    "start-attendance": b'{"attendance": {"attendanceNumber": 1},'
    b' "chat": {"k": {"text": {"message": "\xe9"}}}}',
    "receive-message": b'{"phone": "\xff", "type": "ReceivedCallback"}',
    "sending-message": b'{"phone": "1", "error": "\xe9"}',
    "message-delivery-error": b'{"phone": "1", "error": "n\xe3o existe"}',
    "message-status": b'{"status": "READ", "ids": ["\xff"], "phone": "1"}',
    "when-disconnecting": b'{"disconnected": true, "unread": "\xff"}',
}


@pytest.mark.parametrize(("webhook", "body"), INVALID_UTF8.items(), ids=list(INVALID_UTF8))
def test_invalid_utf8_is_invalid_json(webhook: str, body: bytes) -> None:
    assert malformed(webhook, body).reason == "invalid_json"


@pytest.mark.parametrize("webhook", ["receive-message", "finish-attendance"])
def test_latin1_body_is_invalid_json(webhook: str) -> None:
    """A body re-encoded as Latin-1 (a common proxy mistake) is not JSON."""
    body = RECEIVED.decode().replace('"test"', '"não"').encode("latin-1")
    if webhook == "finish-attendance":
        body = b'{"attendance": {"attendanceNumber": 1}, "chat": {"k": ' + body + b"}}"

    assert malformed(webhook, body).reason == "invalid_json"


@pytest.mark.parametrize("webhook", WEBHOOK_DIRS)
@pytest.mark.parametrize("body", [b"[]", b"[{}]", b"null", b"1", b'"x"', b"true", b"{}"])
def test_json_that_is_not_an_object_of_the_shape_is_invalid_shape(
    webhook: str, body: bytes
) -> None:
    assert malformed(webhook, body).reason == "invalid_shape"


@pytest.mark.parametrize(
    ("webhook", "body"),
    [
        pytest.param(
            "message-status",
            b'{"type": "MessageStatusCallback", "status": "READ", "phone": "1"}',
            id="status-without-ids",
        ),
        pytest.param(
            "message-status",
            b'{"type": "MessageStatusCallback", "status": "READ", "ids": "abc"}',
            id="status-ids-not-a-list",
        ),
        pytest.param("message-status", RECEIVED, id="received-callback-to-message-status"),
        pytest.param(
            "message-status",
            b'{"type": "ReceivedCallback", "status": "READ", "ids": ["a"], "phone": "1"}',
            id="wrong-type-with-status-fields",
        ),
        pytest.param(
            "receive-message",
            (FIXTURES / "message-status" / "read.json").read_bytes(),
            id="status-callback-to-receive-message",
        ),
        pytest.param(
            "sending-message",
            b'{"type": "MessageStatusCallback", "phone": "1"}',
            id="status-callback-to-sending-message",
        ),
        pytest.param(
            "when-disconnecting",
            b'{"type": "DeliveryCallback", "disconnected": true}',
            id="delivery-callback-to-when-disconnecting",
        ),
        pytest.param(
            "receive-message", b'{"type": "ReceivedCallback"}', id="received-without-phone"
        ),
        pytest.param("sending-message", b'{"messageId": "1"}', id="delivery-without-phone"),
        pytest.param("when-disconnecting", b'{"error": "x"}', id="disconnected-without-flag"),
        pytest.param("finish-attendance", b'{"chat": {}}', id="attendance-without-attendance"),
        pytest.param(
            "start-attendance", b'{"attendance": {}, "chat": {}}', id="attendance-without-number"
        ),
        pytest.param(
            "finish-attendance",
            b'{"attendance": {"attendanceNumber": 1}, "chat": [{"messageId": "a"}]}',
            id="chat-is-a-list",
        ),
        pytest.param(
            "start-attendance",
            b'{"attendance": {"attendanceNumber": 1}, "chat": "nothing"}',
            id="chat-is-a-string",
        ),
        pytest.param(
            "finish-attendance",
            b'{"attendance": {"attendanceNumber": 1}, "chat": {"k": 5}}',
            id="chat-message-is-a-number",
        ),
        pytest.param(
            "finish-attendance",
            b'{"attendance": {"attendanceNumber": 1},\n "chat": {"k": [], "k": {}}}',
            id="chat-repeated-key-message-is-a-list",
        ),
        pytest.param(
            "receive-message", b'{"phone": "1", "fromMe": "yes"}', id="message-field-wrong-type"
        ),
    ],
)
def test_wrong_shape_is_invalid_shape(webhook: str, body: bytes) -> None:
    assert malformed(webhook, body).reason == "invalid_shape"


def test_callback_type_is_compared_case_insensitively() -> None:
    body = RECEIVED.replace(b'"ReceivedCallback"', b'"ReceivedCallBack"')

    assert run("receive-message", body).topic == "plug.message.received"


@pytest.mark.parametrize("webhook", WEBHOOK_DIRS)
def test_deeply_nested_body_is_malformed_not_a_crash(webhook: str) -> None:
    """A 20 KB body of nested arrays must be a 400 with a dead letter, not a RecursionError."""
    depth = 10_000
    body = b'{"phone": "1", "x": ' + b"[" * depth + b"]" * depth + b"}"

    malformed(webhook, body)


def test_huge_numeric_string_time_is_no_crash() -> None:
    """A momment string that overflows a float must not escape as OverflowError."""
    body = b'{"phone": "1", "momment": "1.0e999"}'

    try:
        record = run("receive-message", body)
    except Malformed:
        return
    assert envelope(record)["data"]["moment"] is None


@pytest.mark.parametrize(
    ("webhook", "body"),
    [
        ("receive-message", b'{"phone": "1", "location": {"latitude": 1e9999999999999999999}}'),
        ("receive-message", b'{"phone": "1", "order": {"total": 1e9999999999999999999}}'),
        ("receive-message", b'{"phone": "1", "expiresAt": -1e9999999999999999999}'),
        (
            "finish-attendance",
            b'{"attendance": {"attendanceNumber": 1},'
            b' "chat": {"k": {"code": 1e9999999999999999999}}}',
        ),
    ],
    ids=["location", "passthrough", "expires-at", "chat-message"],
)
def test_number_beyond_decimal_range_is_no_crash(webhook: str, body: bytes) -> None:
    """A valid JSON number whose exponent Decimal cannot hold must not raise InvalidOperation."""
    with contextlib.suppress(Malformed):
        run(webhook, body)


# -- dead letters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("webhook", "body", "reason"),
    [
        ("receive-message", b"not json \x00\xff", "invalid_json"),
        ("message-status", b'{"type": "MessageStatusCallback", "status": "READ"}', "invalid_shape"),
        (
            "finish-attendance",
            b'{"attendance": {"attendanceNumber": 1}, "chat": []}',
            "invalid_shape",
        ),
    ],
)
def test_deadletter_keeps_the_body_verbatim(webhook: str, body: bytes, reason: str) -> None:
    error = malformed(webhook, body)

    record = deadletter(Webhook(webhook), TENANT, body, RECEIVED_AT, "plug", error)

    assert record.value == body
    assert record.topic == "plug.deadletter"
    assert record.key == f"{TENANT}:{webhook}".encode()
    assert HEX32.fullmatch(record.event_id)
    assert record.event_id == event_id(TENANT, Webhook(webhook), body)
    found = headers(record)
    assert found["webhook"] == webhook.encode()
    assert found["tenant"] == TENANT.encode()
    assert found["received-at"] == str(RECEIVED_AT).encode()
    assert found["error-reason"] == reason.encode()
    assert found["error-message"] == error.detail.encode()
    assert found["error-message"]


def test_deadletter_message_is_bounded() -> None:
    error = Malformed("x" * 5000)

    record = deadletter(Webhook.RECEIVE_MESSAGE, TENANT, b"{}", RECEIVED_AT, "plug", error)

    assert dict(record.headers)["error-message"] == b"x" * 1000
    assert dict(record.headers)["error-reason"] == b"invalid_shape"


def test_deadletter_topic_follows_the_prefix() -> None:
    record = deadletter(
        Webhook.MESSAGE_STATUS, "globex", b"[]", RECEIVED_AT, "acme.plug", Malformed("bad")
    )

    assert record.topic == "acme.plug.deadletter"
    assert record.key == b"globex:message-status"
