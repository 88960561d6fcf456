"""The session-end log scan finds tokens and personal data, and nothing else."""

from __future__ import annotations

from pathlib import Path

from tests.support import personal
from tests.support.secrets import WRONG, scan


def test_a_phone_number_is_found_but_not_an_event_id_or_a_time() -> None:
    assert personal.in_line("published for 5511987654321") == "a phone number"
    assert personal.in_line("chat 554499999999 closed") == "a phone number"
    assert personal.in_line("event 5511987654321aa0f3c9d2e1b4a6c8d0e2f4 published") is None
    assert personal.in_line("received_at=1732550000000 offset=5511") is None


def test_the_corpus_gives_texts_to_look_for_and_each_is_found() -> None:
    texts = personal.texts()
    assert texts, "the corpus yields no text: the scan would find none"
    text = sorted(texts)[0]
    assert personal.in_line(f"decoding failed near {text!r}") == "a message text or name"


def test_scan_names_the_line_and_what_it_holds(tmp_path: Path) -> None:
    log = tmp_path / "loader.log"
    log.write_text(f"ok\nrefused {WRONG}\nrow of 5511987654321\n", encoding="utf-8")
    lines, leaks = scan([log, tmp_path / "never-written.log"])
    assert lines == 3
    assert leaks == ["loader.log:2: a token", "loader.log:3: a phone number"]
