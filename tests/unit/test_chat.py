"""``ChatKey``: an attendance's chat decoded with every entry, repeated keys kept in order."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.plug import wire
from pipeline.plug.chat import ChatKey, decode_hook

MODEST = settings(max_examples=200, deadline=None)

# Any JSON value under each key: what the key mechanism does, whatever the messages hold.
ANY_CHAT = msgspec.json.Decoder(dict[ChatKey, Any], dec_hook=decode_hook)
ATTENDANCE = msgspec.json.Decoder(wire.AttendanceWebhook, float_hook=Decimal, dec_hook=decode_hook)


def entries(raw: bytes) -> list[tuple[str, Any]]:
    return [(key.text, value) for key, value in ANY_CHAT.decode(raw).items()]


def compact(pairs: Sequence[tuple[str, object]], *, ensure_ascii: bool = True) -> bytes:
    """A JSON object written by hand, so a key may repeat; no whitespace anywhere."""
    items = (
        json.dumps(k, ensure_ascii=ensure_ascii)
        + ":"
        + json.dumps(v, ensure_ascii=ensure_ascii, separators=(",", ":"))
        for k, v in pairs
    )
    return ("{" + ",".join(items) + "}").encode()


def pretty(pairs: Sequence[tuple[str, object]], *, indent: int = 2) -> bytes:
    """The same object laid out the way Plug's documentation prints it."""
    pad = " " * indent
    items = (
        pad + json.dumps(k, ensure_ascii=False) + ": " + json.dumps(v, indent=indent)
        for k, v in pairs
    )
    return ("{\n" + ",\n".join(items) + "\n}\n").encode()


Layout = Callable[[Sequence[tuple[str, object]]], bytes]

FIRST = {"messageId": "ID_DA_MENSAGEM", "momment": 1651065478000, "text": {"message": "um"}}
SECOND = {"messageId": "ID_DA_MENSAGEM", "momment": 1651065479380, "text": {"message": "dois"}}
THIRD = {"messageId": "OTHER", "momment": 1651065480000, "text": {"message": "três"}}


# -- repeated keys ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", [compact, pretty], ids=["compact", "pretty"])
def test_repeated_keys_are_kept_in_document_order(layout: Layout) -> None:
    pairs = [("ID_DA_MENSAGEM", FIRST), ("OTHER", THIRD), ("ID_DA_MENSAGEM", SECOND)]

    assert entries(layout(pairs)) == pairs


@pytest.mark.parametrize("layout", [compact, pretty], ids=["compact", "pretty"])
def test_three_copies_of_one_key_give_three_entries(layout: Layout) -> None:
    pairs = [("k", {"n": 1}), ("k", {"n": 2}), ("k", {"n": 3})]

    assert entries(layout(pairs)) == pairs


def test_the_attendance_wire_keeps_both_messages_of_the_seed_chat() -> None:
    """The documentation's own example repeats ID_DA_MENSAGEM: both messages survive."""
    body = (
        b'{"attendance": {"attendanceNumber": 7},\n  "chat": {\n'
        b'    "ID_DA_MENSAGEM": {\n      "momment": 1651065478000\n    },\n'
        b'    "ID_DA_MENSAGEM": {\n      "momment": 1651065479380\n    }\n  }}'
    )

    chat = ATTENDANCE.decode(body).chat

    assert [key.text for key in chat] == ["ID_DA_MENSAGEM", "ID_DA_MENSAGEM"]
    assert [m.momment for m in chat.values()] == [1651065478000, 1651065479380]


def test_a_chat_key_equals_only_itself() -> None:
    a, b = ChatKey("x"), ChatKey("x")

    assert a != b
    assert len({a: 1, b: 2}) == 2
    assert repr(a) == "ChatKey('x')"


@MODEST
@given(
    pairs=st.lists(
        st.tuples(
            st.text(max_size=12),
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers(min_value=-(2**63), max_value=2**63 - 1)
                | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4)
                ),
                max_leaves=12,
            ),
        ),
        max_size=8,
    ),
    ensure_ascii=st.booleans(),
    indent=st.integers(min_value=0, max_value=4),
)
def test_every_pair_is_kept_in_order_whatever_the_layout(
    pairs: list[tuple[str, object]], ensure_ascii: bool, indent: int
) -> None:
    assert entries(compact(pairs, ensure_ascii=ensure_ascii)) == pairs
    assert entries(pretty(pairs, indent=indent)) == pairs


# -- keys with escapes and unicode -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        (b'{"a\\"b":1,"a\\"b":2}', ['a"b', 'a"b']),
        (b'{"back\\\\slash":1}', ["back\\slash"]),
        (b'{"\\u00e9":1,"\\u00e9":2}', ["é", "é"]),
        ('{"é":1,"é":2}'.encode(), ["é", "é"]),
        ('{"é":1,"\\u00e9":2}'.encode(), ["é", "é"]),
        (b'{"\\ud83d\\ude00":1}', ["\U0001f600"]),
        ('{"\U0001f600":1,"x":2}'.encode(), ["\U0001f600", "x"]),
        (b'{"tab\\there":1,"nl\\n":2}', ["tab\there", "nl\n"]),
        (b'{"sl\\/ash":1}', ["sl/ash"]),
        (b'{"":1,"":2}', ["", ""]),
    ],
)
def test_keys_with_escapes_and_unicode(raw: bytes, keys: list[str]) -> None:
    got = entries(raw)

    assert [k for k, _ in got] == keys
    assert [v for _, v in got] == list(range(1, len(keys) + 1))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"b":2}',
        b'{ "a" : 1 , "b" : 2 }',
        b'\n{\n\t"a":\r\n1,\n"b"\t:2\n}\n',
        b'   {"a":1,"b":2}   ',
        b'{"a":1,\n\n\n"b":2}',
    ],
)
def test_whitespace_variants_give_the_same_entries(raw: bytes) -> None:
    assert entries(raw) == [("a", 1), ("b", 2)]


@pytest.mark.parametrize("raw", [b"{}", b"{ }", b" {\n} ", b"\t{}\n"])
def test_empty_object_has_no_entries(raw: bytes) -> None:
    assert entries(raw) == []


# -- not an object ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"[]", b'[{"a":1}]', b"null", b"1", b'"chat"', b"true"],
)
def test_a_chat_that_is_not_an_object_is_a_validation_error(raw: bytes) -> None:
    with pytest.raises(msgspec.ValidationError, match="Expected `object`"):
        ANY_CHAT.decode(raw)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"a":1', b'{"a":1,}', b'{"a" 1}', b"{a:1}", b'{"a":1}x', b'{"a":NaN}'],
)
def test_broken_json_is_a_decode_error(raw: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        ANY_CHAT.decode(raw)


def test_invalid_utf8_in_a_key_is_refused() -> None:
    # ingest checks a whole body's UTF-8 first, and reads this as invalid JSON too
    with pytest.raises(UnicodeDecodeError):
        ANY_CHAT.decode(b'{"\xff":1}')


def test_the_hook_decodes_nothing_but_chat_keys() -> None:
    class Other:
        pass

    with pytest.raises(TypeError):
        decode_hook(Other, "x")
    with pytest.raises(TypeError):
        decode_hook(ChatKey, 5)
    with pytest.raises(msgspec.ValidationError, match="is not decoded here"):
        msgspec.json.decode(b'{"a": 1}', type=Other, dec_hook=decode_hook)
