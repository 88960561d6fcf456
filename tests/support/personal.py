"""The test traffic's personal data, as a log scan looks for it.

No log line of the ingress, the loader or any command may hold a customer's phone number
or a message's text. Phones are found by shape (Brazil's country code and 10 or 11
digits, not inside a longer run of letters and digits such as an event id); texts by
value, gathered from the payloads the suite sends.
"""

from __future__ import annotations

import functools
import re

import msgspec

from tests.support.payloads import corpus_files

PHONE = re.compile(r"(?<![0-9A-Za-z])55\d{10,11}(?![0-9A-Za-z])")
# Shorter texts ("ok", "Oi") are words any log line may hold for reasons of its own.
_MIN_TEXT = 12
_TEXT_KEYS = ("message", "caption", "senderName", "chatName", "name")


@functools.cache
def texts() -> frozenset[str]:
    """Message texts, captions and names of the payload corpus."""
    found: set[str] = set()
    for path in corpus_files():
        try:
            body = msgspec.json.decode(path.read_bytes())
        except msgspec.DecodeError:
            continue  # a malformed payload of the corpus: nothing to gather
        _gather(body, found)
    return frozenset(found)


def _is_text(value: str) -> bool:
    """Words, long enough to mean something; a phone in a name field is found by shape."""
    return len(value) >= _MIN_TEXT and not value.isdigit()


def _gather(value: object, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _TEXT_KEYS and isinstance(item, str) and _is_text(item):
                found.add(item)
            _gather(item, found)
    elif isinstance(value, list):
        for item in value:
            _gather(item, found)


def in_line(line: str) -> str | None:
    """What kind of personal data ``line`` holds, or None."""
    if PHONE.search(line):
        return "a phone number"
    if any(text in line for text in texts()):
        return "a message text or name"
    return None
