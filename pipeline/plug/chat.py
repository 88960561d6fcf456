"""Split an attendance's ``chat`` object into its entries, repeated keys included.

Plug's ``chat`` maps message ID -> message, and its own documentation repeats a
key. A JSON object decoded into a dict keeps only the last value of a repeated
key, so a transcript would silently lose messages. Here the object is decoded
once into (key, raw value) pairs by msgspec; when the sizes show that nothing
can be missing (compact JSON, no repeated key) that is the answer, otherwise a
scan of the text finds every pair in document order. ``chat_array`` gives the
values as one JSON array, to decode every message in one call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import msgspec

_ENTRIES = msgspec.json.Decoder(dict[str, msgspec.Raw])
_VALUE = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


class ChatShapeError(ValueError):
    """``chat`` is not a JSON object."""


def chat_entries(chat: bytes | msgspec.Raw) -> list[tuple[str, bytes]]:
    """Every (key, raw JSON value) of the object ``chat``, in document order.

    Each value is the exact bytes of the text, whitespace inside it included.
    """
    entries = _entries(chat)
    if entries is None:
        return _scanned(chat)
    return [(k, bytes(v)) for k, v in entries.items()]


def chat_array(chat: bytes | msgspec.Raw) -> tuple[list[str], bytes]:
    """The keys of the object ``chat`` in document order, and its values as one JSON array.

    For decoding every value at once: one decode of a ``list[...]`` costs less than
    one decode per value. Whitespace between tokens may be dropped from the values,
    which changes no decoded value. Strings inside the values are not checked for
    valid UTF-8 (a caller decoding the whole body checks that once).
    """
    entries = _entries(chat)
    if entries is None:
        # Not compact (Plug's documentation pretty-prints): without the whitespace
        # between tokens, which msgspec removes keeping every pair in order, the size
        # check can succeed; only escaped or repeated keys are then left to the scan.
        try:
            chat = msgspec.json.format(chat, indent=-1)
        except msgspec.DecodeError as exc:
            raise ChatShapeError(f"chat must be an object of messages: {exc}") from exc
        entries = _entries(chat)
    if entries is None:
        pairs = _scanned(chat)
        return [k for k, _ in pairs], _array(v for _, v in pairs)
    return list(entries), _array(entries.values())


def _array(values: Iterable[bytes | msgspec.Raw]) -> bytes:
    return b"[" + b",".join(values) + b"]"


def _entries(chat: bytes | msgspec.Raw) -> dict[str, msgspec.Raw] | None:
    """The pairs as a dict when they account for every byte of ``chat``, else None.

    Compact JSON with no repeated key is exactly ``{`` + ``"key":value`` pairs
    joined by commas + ``}``. Anything else (whitespace, a repeated key that the
    dict dropped, a key written with escapes) makes the text longer than that.
    """
    try:
        entries = _ENTRIES.decode(chat)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ChatShapeError(f"chat must be an object of messages: {exc}") from exc
    if not entries:
        return entries
    # 1 for the braces less the missing last comma; 4 a pair for its quotes, colon, comma.
    compact = (
        1 + len("".join(entries).encode()) + 4 * len(entries) + sum(map(len, entries.values()))
    )
    return entries if compact == len(chat) else None


def _scanned(chat: bytes | msgspec.Raw) -> list[tuple[str, bytes]]:
    try:
        return _scan(bytes(chat).decode())
    except ValueError as exc:  # invalid UTF-8 inside a value, which msgspec's skip let through
        raise ChatShapeError(f"chat is not valid JSON text: {exc}") from exc


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _scan(text: str) -> list[tuple[str, bytes]]:
    """Walk the object's text pair by pair; slow, but keeps repeated keys."""
    pairs: list[tuple[str, bytes]] = []
    i = _skip(text, 0)
    if text[i] != "{":
        raise ChatShapeError("chat must be an object")
    i = _skip(text, i + 1)
    if text[i] == "}":
        return pairs
    while True:
        if text[i] != '"':
            raise ChatShapeError("chat keys must be strings")
        key, i = _VALUE.raw_decode(text, i)
        i = _skip(text, i)
        if text[i] != ":":
            raise ChatShapeError("':' expected in chat")
        i = _skip(text, i + 1)
        _, end = _VALUE.raw_decode(text, i)
        pairs.append((key, text[i:end].encode()))
        i = _skip(text, end)
        if text[i] == ",":
            i = _skip(text, i + 1)
        elif text[i] == "}":
            return pairs
        else:
            raise ChatShapeError("',' or '}' expected in chat")
