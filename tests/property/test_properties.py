"""Properties of the pure stages: ingest is total, normalise loses no message, route is total."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import route
from pipeline.config import parse_tokens
from pipeline.errors import Malformed
from pipeline.ingest import deadletter, ingest
from pipeline.record import Record
from pipeline.webhooks import EventType, Webhook
from tests.support.payloads import corpus_files

MODEST = settings(max_examples=200, deadline=None)
WEBHOOKS = st.sampled_from(list(Webhook))


def ingest_or_malformed(webhook: Webhook, tenant: str, body: bytes) -> Record | Malformed:
    """Only a Record or Malformed may come out; any other exception fails the property."""
    try:
        record = ingest(webhook, tenant, body, 1_700_000_000_000, "plug")
    except Malformed as exc:
        rejected = exc
    else:
        return accepted(record, tenant)
    dead = deadletter(webhook, tenant, body, 1_700_000_000_000, "plug", rejected)
    assert dead.value == body
    assert dead.topic == "plug.deadletter"
    assert rejected.reason in {"invalid_json", "invalid_shape"}
    return rejected


def accepted(record: Record, tenant: str) -> Record:
    assert record.topic.startswith("plug.")
    assert record.key.startswith(tenant.encode() + b":")
    envelope = json.loads(record.value)
    assert envelope["event_id"] == record.event_id
    assert envelope["tenant"] == tenant
    return record


# -- ingest is total -------------------------------------------------------------------


@MODEST
@given(webhook=WEBHOOKS, body=st.binary(max_size=512))
def test_arbitrary_bytes_give_a_record_or_malformed(webhook: Webhook, body: bytes) -> None:
    ingest_or_malformed(webhook, "acme", body)


SAMPLES = [(Webhook(path.parent.name), path.read_bytes()) for path in corpus_files()]


@st.composite
def mutated_samples(draw: st.DrawFn) -> tuple[Webhook, bytes]:
    """A documentation payload with a few bytes replaced: near-valid bodies reach deep."""
    webhook, body = draw(st.sampled_from(SAMPLES))
    start = draw(st.integers(min_value=0, max_value=len(body)))
    end = draw(st.integers(min_value=start, max_value=min(len(body), start + 8)))
    return webhook, body[:start] + draw(st.binary(max_size=8)) + body[end:]


@MODEST
@given(sample=mutated_samples())
def test_mutated_payloads_give_a_record_or_malformed(sample: tuple[Webhook, bytes]) -> None:
    webhook, body = sample
    ingest_or_malformed(webhook, "acme", body)


@MODEST
@given(
    webhook=WEBHOOKS,
    field=st.sampled_from(["phone", "error", "status", "x"]),
    raw=st.binary(max_size=6),
)
def test_arbitrary_bytes_inside_a_json_string_give_a_record_or_malformed(
    webhook: Webhook, field: str, raw: bytes
) -> None:
    body = (
        b'{"type": null, "status": "READ", "ids": [], "disconnected": true, "phone": "1", "'
        + field.encode()
        + b'": "'
        + raw.replace(b"\\", b"").replace(b'"', b"")
        + b'", "attendance": {"attendanceNumber": 1}}'
    )
    ingest_or_malformed(webhook, "acme", body)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
# Keys Plug's shapes use, so generated objects reach deep into the decoders.
FIELD_NAMES = st.sampled_from(
    [
        "type",
        "phone",
        "status",
        "ids",
        "momment",
        "moment",
        "messageId",
        "instanceId",
        "error",
        "disconnected",
        "attendance",
        "attendanceNumber",
        "customer",
        "chat",
        "text",
        "message",
        "image",
        "location",
        "latitude",
        "reaction",
        "time",
        "notification",
        "notificationParameters",
        "attendanceCategory",
        "attendanceCategories",
        "operatorReport ",
        "hydratedTemplate",
        "externalAdReply",
    ]
) | st.text(max_size=10)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(FIELD_NAMES, inner, max_size=6),
    max_leaves=30,
)


@MODEST
@given(webhook=WEBHOOKS, value=JSON_VALUES, indent=st.sampled_from([None, 2]))
def test_arbitrary_json_gives_a_record_or_malformed(
    webhook: Webhook, value: Any, indent: int | None
) -> None:
    ingest_or_malformed(webhook, "acme", json.dumps(value, indent=indent).encode())


def test_json_strategy_reaches_acceptance() -> None:
    """Guard against a vacuous property: these shapes must be accepted."""
    for webhook, body in [
        (Webhook.RECEIVE_MESSAGE, {"phone": "1"}),
        (Webhook.MESSAGE_STATUS, {"status": "READ", "ids": []}),
        (Webhook.WHEN_DISCONNECTING, {"disconnected": True}),
        (Webhook.FINISH_ATTENDANCE, {"attendance": {"attendanceNumber": 1}}),
    ]:
        assert isinstance(ingest_or_malformed(webhook, "acme", json.dumps(body).encode()), Record)


# -- normalise never drops a message ---------------------------------------------------

MOMENTS = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=99_999_999_999),  # seconds
    st.integers(min_value=100_000_000_000, max_value=4_000_000_000_000),  # ms
)
MESSAGES = st.fixed_dictionaries(
    {"text": st.fixed_dictionaries({"message": st.text(max_size=30)})},
    optional={
        "messageId": st.text(max_size=12),
        "momment": MOMENTS,
        "fromMe": st.booleans(),
        "status": st.sampled_from(["RECEIVED", "READ", "MESSAGE_READ"]),
    },
)
CHAT_KEYS = st.sampled_from(["ID_DA_MENSAGEM", "3EB0", "é", 'a"b', ""]) | st.text(max_size=8)


def chat_text(pairs: list[tuple[str, dict[str, Any]]], indent: int | None, ascii_: bool) -> str:
    """A chat object written by hand so that keys can repeat."""
    if indent is None:
        items = [
            json.dumps(k, ensure_ascii=ascii_) + ":" + json.dumps(v, separators=(",", ":"))
            for k, v in pairs
        ]
        return "{" + ",".join(items) + "}"
    pad = " " * indent
    items = [
        pad + json.dumps(k, ensure_ascii=ascii_) + ": " + json.dumps(v, indent=indent)
        for k, v in pairs
    ]
    return "{\n" + ",\n".join(items) + "\n}"


def expected_moment(value: int | None) -> int | None:
    if value is None:
        return None
    return value * 1000 if value < 100_000_000_000 else value


@MODEST
@given(
    pairs=st.lists(st.tuples(CHAT_KEYS, MESSAGES), max_size=8),
    webhook=st.sampled_from([Webhook.FINISH_ATTENDANCE, Webhook.START_ATTENDANCE]),
    indent=st.sampled_from([None, 0, 2, 4]),
    ascii_=st.booleans(),
)
def test_normalise_never_drops_a_message(
    pairs: list[tuple[str, dict[str, Any]]], webhook: Webhook, indent: int | None, ascii_: bool
) -> None:
    chat = chat_text(pairs, indent, ascii_)
    if indent is None:
        body = '{"attendance":{"attendanceNumber":1,"customer":{"phone":"55"}},"chat":' + chat + "}"
    else:
        body = (
            '{\n  "attendance": {"attendanceNumber": 1, "customer": {"phone": "55"}},\n'
            '  "chat": ' + chat + "\n}"
        )

    record = ingest(webhook, "acme", body.encode(), 1, "plug")

    messages = json.loads(record.value)["data"]["messages"]
    assert len(messages) == len(pairs)
    want = sorted(
        (
            msg.get("messageId", key),
            expected_moment(msg.get("momment")) or -1,
            msg["text"]["message"],
        )
        for key, msg in pairs
    )
    got = [(m["message_id"], m["moment"] or -1, m["content"]["message"]) for m in messages]
    assert sorted(got) == want
    order = [(m["moment"] if m["moment"] is not None else -1, m["message_id"]) for m in messages]
    assert order == sorted(order)


# -- route is total --------------------------------------------------------------------


@MODEST
@given(webhook=WEBHOOKS, tenant=st.text(max_size=30), identity=st.none() | st.text(max_size=30))
def test_route_is_total(webhook: Webhook, tenant: str, identity: str | None) -> None:
    key = route.key(tenant, identity)
    assert key
    assert key.startswith(tenant.encode() + b":")
    assert route.key(tenant, webhook.value) == f"{tenant}:{webhook.value}".encode()
    for prefix in ("plug", "", "acme.plug"):
        assert route.deadletter_topic(prefix)
        for event_type in EventType:
            topic = route.event_topic(prefix, event_type)
            assert topic
            assert "_" not in topic.removeprefix(prefix)
            headers = dict(route.event_headers(event_type, "e" * 32, tenant, webhook))
            assert headers["tenant"] == tenant.encode()
            assert headers["webhook"] == webhook.value.encode()


@MODEST
@given(tenants=st.lists(st.text(min_size=1, max_size=10), min_size=2, max_size=2, unique=True))
def test_route_keys_of_different_tenants_differ(tenants: list[str]) -> None:
    first, second = tenants
    assert route.key(first, "5544999999999") != route.key(second, "5544999999999")


# -- parse_tokens round-trips ----------------------------------------------------------

_VISIBLE = st.characters(categories=["L", "N", "P", "S"])
# tenant names are limited to what can sit before the ':' of a record key
TENANT_NAMES = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)
TOKENS = st.text(alphabet=_VISIBLE.filter(lambda ch: ch != ","), min_size=1, max_size=24)
TOKEN_MAPS = st.dictionaries(
    TENANT_NAMES, st.lists(TOKENS, min_size=1, max_size=3).map(tuple), max_size=6
).filter(lambda m: len({t for ts in m.values() for t in ts}) == sum(map(len, m.values())))


@MODEST
@given(tokens=TOKEN_MAPS, separator=st.sampled_from([",", "\n", " , ", "\n\n"]))
def test_parse_tokens_round_trips(tokens: dict[str, tuple[str, ...]], separator: str) -> None:
    pairs = [f"{tenant}={token}" for tenant, given in tokens.items() for token in given]

    assert parse_tokens(separator.join(pairs), "PLUG_PIPELINE_TOKENS") == tokens
