"""An attendance's ``chat``: every entry in document order, repeated keys included.

Plug's ``chat`` maps message ID -> message, and its own documentation repeats a key.
Decoded into a ``dict[str, ...]``, a repeated key keeps only its last value: a transcript
would silently lose messages. Keyed by ``ChatKey`` instead, a key hashed by identity,
no two keys are ever equal: the decoder keeps every entry, in document order, in the
same single pass that decodes the rest of the body (whitespace, escaped keys and all).
"""

from __future__ import annotations

from typing import Any


class ChatKey:
    """One key of a ``chat`` object; equal only to itself, so a repeated key is a new entry."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"ChatKey({self.text!r})"


def decode_hook(kind: type, value: Any) -> Any:
    """msgspec's ``dec_hook``: a chat key from the string the decoder read."""
    if kind is ChatKey and type(value) is str:
        return ChatKey(value)
    # a TypeError is what msgspec reports as a ValidationError (a 400, not a crash)
    raise TypeError(f"{kind!r} is not decoded here")
