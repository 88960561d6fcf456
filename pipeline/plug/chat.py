"""Split an attendance's ``chat`` object into its entries, repeated keys included.

Plug's ``chat`` maps message ID -> message, and its own documentation repeats a
key. A JSON object decoded into a dict keeps only the last value of a repeated
key, so a transcript would silently lose messages. Here the object is decoded
once into (key, raw value) pairs by msgspec; when the sizes show that nothing
can be missing (compact JSON, no repeated key) that is the answer, otherwise a
scan of the text finds every pair in document order.
"""

from __future__ import annotations

import json

import msgspec

_ENTRIES = msgspec.json.Decoder(dict[str, msgspec.Raw])
_VALUE = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


class ChatShapeError(ValueError):
    """``chat`` is not a JSON object."""


def chat_entries(chat: bytes | msgspec.Raw) -> list[tuple[str, bytes]]:
    """Every (key, raw JSON value) of the object ``chat``, in document order."""
    data = bytes(chat)
    try:
        entries = _ENTRIES.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ChatShapeError(f"chat must be an object of messages: {exc}") from exc
    compact = 1 + sum(len(k.encode()) + 4 + len(v) for k, v in entries.items())
    if not entries:
        return []
    if compact == len(data):
        # Compact JSON whose size these entries account for exactly: none is missing.
        return [(k, bytes(v)) for k, v in entries.items()]
    try:
        return _scan(data.decode())
    except ValueError as exc:  # invalid UTF-8 inside a value, which the skip above let through
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
