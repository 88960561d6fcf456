"""Inputs the fuzzer once found crashing (tests/fixtures/fuzz/) now end as a Record or a 400."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import ingest
from pipeline.errors import Malformed
from pipeline.record import Record
from pipeline.webhooks import Webhook

FOUND = sorted((Path(__file__).parents[1] / "fixtures" / "fuzz").glob("*"))
HOOKS = list(Webhook)


def replay(data: bytes) -> Record | Malformed:
    """The fuzz harness's own mapping: the first byte picks the webhook."""
    try:
        return ingest.ingest(HOOKS[data[0] % len(HOOKS)], "fuzz", data[1:], 1, "plug")
    except Malformed as exc:
        return exc


@pytest.mark.parametrize("path", FOUND, ids=[p.name for p in FOUND])
def test_a_found_input_is_a_record_or_malformed(path: Path) -> None:
    assert isinstance(replay(path.read_bytes()), Record | Malformed)


def test_the_regression_set_is_not_empty() -> None:
    """At least the hand-made seeds of past crash shapes are here."""
    assert FOUND
