"""Scrubbing: every event built from Plug's payloads loses its customer, keeps its facts.

The personal strings are collected from the original event generically (every string
under a personal field), so a field added to the events later is covered by listing it
once here, and the check never depends on what a fixture happens to contain.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipeline.events.models import EventData
from pipeline.ingest import normalised
from pipeline.privacy.scrub import scrub
from pipeline.webhooks import WEBHOOK_EVENT_TYPES, EventType, Webhook
from tests.support.payloads import corpus_files

# Fields (at any depth) whose every string describes or identifies the customer.
PERSONAL = frozenset(
    {
        "customer",
        "phone",
        "chat_name",
        "sender_name",
        "sender_photo",
        "photo",
        "sender_lid",
        "chat_lid",
        "participant_phone",
        "participant_lid",
        "external_ad",
        "notification_parameters",
        "profile_name",
        "updated_photo",
        "broadcast_recipients",
        "status_image",
        "content",
        "operator_report",
        "rating_observation",
    }
)
# Inside a message's content, the non-identifying facts that stay.
CONTENT_FACTS = frozenset({"kind", "mime_type", "download_error", "message_id"})
# What the KPI views count and time: equal before and after, wherever they occur.
KEPT = frozenset(
    {
        "attendance_number",
        "status",
        "department",
        "finished_by",
        "operator",
        "request_time",
        "start_time",
        "end_time",
        "moment",
        "categories",
        "message_id",
        "message_ids",
        "zaap_id",
        "instance_id",
        "connected_phone",
        "from_me",
        "is_group",
        "is_automatic",
        "error",
        "error_code",
        "kind",
        "disconnected",
    }
)


def _cases() -> list[tuple[Webhook, Path]]:
    """Every payload under its own webhook; a delivery callback also as a failed delivery."""
    cases = [(Webhook(path.parent.name), path) for path in corpus_files()]
    failed = [(Webhook.MESSAGE_DELIVERY_ERROR, p) for w, p in cases if w is Webhook.SENDING_MESSAGE]
    assert failed  # the one event type the corpus has no folder of
    return cases + failed


CASES = _cases()
IDS = [f"{w.value}/{p.stem}" for w, p in CASES]


def _made(webhook: Webhook, path: Path) -> tuple[EventType, EventData]:
    event_type, _identity, data = normalised(webhook, path.read_bytes())
    return event_type, data


def _strings(value: Any, skip: frozenset[str] = frozenset()) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in skip and not (key == "name" and value.get("kind") == "notification"):
                yield from _strings(item, skip)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, skip)


def _split(tree: Any, personal: set[str], kept: set[str]) -> None:
    """Sort every string of ``tree`` by whether a personal field holds it."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "content":  # the kind and a few facts stay, the rest is the customer's
                personal.update(_strings(value, CONTENT_FACTS))
                kept.update(_facts(value))
            elif key in PERSONAL:
                personal.update(_strings(value))
            else:
                _split(value, personal, kept)
    elif isinstance(tree, list):
        for item in tree:
            _split(item, personal, kept)
    elif isinstance(tree, str):
        kept.add(tree)


def _facts(content: Any) -> Iterator[str]:
    if isinstance(content, dict):
        for key, value in content.items():
            if key in CONTENT_FACTS or (key == "name" and content.get("kind") == "notification"):
                yield from _strings(value)
            elif isinstance(value, dict):
                yield from _facts(value)


def _digit_runs(text: str) -> set[str]:
    return set(re.findall(r"\d{8,}", text))


def _kept_equal(before: Any, after: Any, where: str) -> int:
    """Assert every KEPT field equal, walking both trees together; how many were compared."""
    compared = 0
    if isinstance(before, dict):
        assert isinstance(after, dict), where
        for key, value in before.items():
            if key in KEPT:
                assert after.get(key) == value, f"{where}.{key}"
                compared += 1
            elif isinstance(value, dict | list) and key in after and key not in PERSONAL:
                compared += _kept_equal(value, after[key], f"{where}.{key}")
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            compared += _kept_equal(b, a, f"{where}[{i}]")
    return compared


def test_the_corpus_covers_every_event_type_from_a_webhook() -> None:
    made = {_made(webhook, path)[0] for webhook, path in CASES}
    assert made == WEBHOOK_EVENT_TYPES


@pytest.mark.parametrize(("webhook", "path"), CASES, ids=IDS)
def test_scrubbed_with_no_phone_nothing_personal_is_left(webhook: Webhook, path: Path) -> None:
    _event_type, data = _made(webhook, path)
    personal: set[str] = set()
    kept: set[str] = set()
    _split(msgspec.to_builtins(data), personal, kept)
    # A string a kept field also holds (the centre's own number, an operator's name in
    # a transcript) may stay; every other one must be gone, as a value and as digits.
    gone = {s for s in personal - kept if s.strip()}
    kept_digits = set().union(*map(_digit_runs, kept))
    digits = set().union(*map(_digit_runs, gone)) - kept_digits
    scrubbed = msgspec.json.encode(scrub(data, lambda _phone: None))
    text = scrubbed.decode()
    values = set(_strings(msgspec.json.decode(scrubbed)))
    assert sorted(gone & values) == []
    assert sorted(d for d in digits if re.search(rf"(?<!\d){d}(?!\d)", text)) == []


@pytest.mark.parametrize(("webhook", "path"), CASES, ids=IDS)
def test_scrubbed_the_facts_the_views_count_are_unchanged(webhook: Webhook, path: Path) -> None:
    _event_type, data = _made(webhook, path)
    before = msgspec.to_builtins(data)
    after = msgspec.to_builtins(scrub(data, lambda _phone: None))
    assert _kept_equal(before, after, "data") > 0


def test_the_corpus_has_personal_data_to_scrub() -> None:
    """The check above would pass on a corpus without customers; this one would not."""
    found: set[str] = set()
    for webhook, path in CASES:
        _event_type, data = _made(webhook, path)
        _split(msgspec.to_builtins(data), found, set())
    digits = {s for s in found if s.isdigit() and len(s) >= 10}
    assert len(digits) >= 5
    assert any(" " in s for s in found)  # a name, a text or a caption


def test_phones_go_through_the_function_given() -> None:
    """A pseudonym or an erasure token takes the phone's place wherever it was."""
    for webhook, path in CASES:
        _event_type, data = _made(webhook, path)
        phones: set[str] = set()

        def token(phone: str, seen: set[str] = phones) -> str:
            seen.add(phone)
            return f"token-{len(phone)}"

        replaced = scrub(data, token)
        original = msgspec.json.encode(data)
        encoded = msgspec.json.encode(replaced)
        kept: set[str] = set()
        _split(msgspec.to_builtins(data), set(), kept)
        for phone in phones - kept:  # the centre's own number stays where it is kept
            assert phone.encode() in original
            assert f'"{phone}"'.encode() not in encoded
