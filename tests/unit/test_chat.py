"""``chat_entries``: an attendance's chat object as (key, raw value) pairs, repeats kept."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from unittest import mock

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.plug import chat
from pipeline.plug.chat import ChatShapeError, chat_entries

MODEST = settings(max_examples=200, deadline=None)


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


def decoded(entries: list[tuple[str, bytes]]) -> list[tuple[str, object]]:
    return [(k, json.loads(v)) for k, v in entries]


FIRST = {"messageId": "ID_DA_MENSAGEM", "momment": 1651065478000, "text": {"message": "um"}}
SECOND = {"messageId": "ID_DA_MENSAGEM", "momment": 1651065479380, "text": {"message": "dois"}}
THIRD = {"messageId": "OTHER", "momment": 1651065480000, "text": {"message": "três"}}


# -- repeated keys ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", [compact, pretty], ids=["compact", "pretty"])
def test_repeated_keys_are_kept_in_document_order(layout: Layout) -> None:
    pairs = [("ID_DA_MENSAGEM", FIRST), ("OTHER", THIRD), ("ID_DA_MENSAGEM", SECOND)]

    entries = chat_entries(layout(pairs))

    assert decoded(entries) == pairs


@pytest.mark.parametrize("layout", [compact, pretty], ids=["compact", "pretty"])
def test_three_copies_of_one_key_give_three_entries(layout: Layout) -> None:
    pairs = [("k", {"n": 1}), ("k", {"n": 2}), ("k", {"n": 3})]

    assert decoded(chat_entries(layout(pairs))) == pairs


def test_seed_chat_keeps_both_messages() -> None:
    raw = (
        b'{\n    "ID_DA_MENSAGEM": {\n      "momment": 1651065478000\n    },\n'
        b'    "ID_DA_MENSAGEM": {\n      "momment": 1651065479380\n    }\n  }'
    )

    entries = chat_entries(raw)

    assert [k for k, _ in entries] == ["ID_DA_MENSAGEM", "ID_DA_MENSAGEM"]
    assert [json.loads(v)["momment"] for _, v in entries] == [1651065478000, 1651065479380]


def test_raw_values_are_the_exact_bytes_of_each_value() -> None:
    raw = b'{"a": {"x" : 1.50,  "y":[1 ,2]}, "a":"s\\u00e9"}'

    entries = chat_entries(raw)

    assert entries == [("a", b'{"x" : 1.50,  "y":[1 ,2]}'), ("a", b'"s\\u00e9"')]


def test_accepts_msgspec_raw() -> None:
    entries = chat_entries(msgspec.Raw(b'{"a":{"n":1},"b":{"n":2}}'))

    assert entries == [("a", b'{"n":1}'), ("b", b'{"n":2}')]


# -- fast path and scan path -----------------------------------------------------------


def test_compact_unique_ascii_keys_take_the_fast_path() -> None:
    raw = compact([("a", {"n": 1}), ("b", {"n": 2})])

    with mock.patch.object(chat, "_scan", side_effect=AssertionError("scan path taken")):
        entries = chat_entries(raw)

    assert decoded(entries) == [("a", {"n": 1}), ("b", {"n": 2})]


def test_compact_repeated_key_falls_back_to_the_scan() -> None:
    raw = compact([("a", {"n": 1}), ("a", {"n": 2})])

    with mock.patch.object(chat, "_scan", wraps=chat._scan) as scan:
        entries = chat_entries(raw)

    assert scan.call_count == 1
    assert decoded(entries) == [("a", {"n": 1}), ("a", {"n": 2})]


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.text(max_size=12)
PAIRS = st.lists(st.tuples(KEYS, JSON_VALUES), max_size=8)


@MODEST
@given(pairs=PAIRS, ensure_ascii=st.booleans())
def test_fast_path_equals_scan_path_on_compact_input(
    pairs: list[tuple[str, object]], ensure_ascii: bool
) -> None:
    raw = compact(pairs, ensure_ascii=ensure_ascii)

    fast = chat_entries(raw)
    scanned = chat._scan(raw.decode())

    assert fast == scanned
    assert [k for k, _ in fast] == [k for k, _ in pairs]
    assert decoded(fast) == decoded([(k, json.dumps(v).encode()) for k, v in pairs])


@MODEST
@given(pairs=PAIRS, indent=st.integers(min_value=0, max_value=4))
def test_pretty_input_keeps_every_pair_in_order(
    pairs: list[tuple[str, object]], indent: int
) -> None:
    entries = chat_entries(pretty(pairs, indent=indent))

    assert [k for k, _ in entries] == [k for k, _ in pairs]
    assert decoded(entries) == decoded([(k, json.dumps(v).encode()) for k, v in pairs])


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
    entries = chat_entries(raw)

    assert [k for k, _ in entries] == keys
    assert [json.loads(v) for _, v in entries] == list(range(1, len(keys) + 1))


# -- whitespace ------------------------------------------------------------------------


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
    assert chat_entries(raw) == [("a", b"1"), ("b", b"2")]


@pytest.mark.parametrize("raw", [b"{}", b"{ }", b" {\n} ", b"\t{}\n"])
def test_empty_object_has_no_entries(raw: bytes) -> None:
    assert chat_entries(raw) == []


# -- not an object ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'[{"a":1}]',
        b"null",
        b"1",
        b'"chat"',
        b"true",
        b"",
        b"{",
        b'{"a":1',
        b'{"a":1,}',
        b'{"a" 1}',
        b"{a:1}",
        b'{"a":1}x',
        b'{"a":NaN}',
    ],
)
def test_non_object_raises_chat_shape_error(raw: bytes) -> None:
    with pytest.raises(ChatShapeError):
        chat_entries(raw)


@pytest.mark.parametrize(
    "raw",
    [b'{"a": "\xff"}', b'{"\xff":1}', b'{"\xc3": 1, "b": 2}'],
    ids=["pretty-value", "compact-key", "pretty-key"],
)
def test_invalid_utf8_raises_chat_shape_error(raw: bytes) -> None:
    """Not JSON, so not an object of messages; a UnicodeDecodeError would escape ingest."""
    with pytest.raises(ChatShapeError):
        chat_entries(raw)


def test_chat_shape_error_is_a_value_error() -> None:
    assert issubclass(ChatShapeError, ValueError)
