"""DedupWindow: repeated ids within the window are caught; memory stays bounded."""

from __future__ import annotations

import pytest

from pipeline.consume import DedupWindow


def test_an_id_seen_again_within_the_window_is_a_duplicate() -> None:
    window = DedupWindow(3)
    assert [window.seen(i) for i in ["a", "b", "a", "c", "b"]] == [
        False,
        False,
        True,
        False,
        True,
    ]


def test_the_window_forgets_the_least_recently_seen_and_stays_bounded() -> None:
    window = DedupWindow(2)
    for event_id in ["a", "b", "c"]:
        window.seen(event_id)
    assert len(window) == 2
    assert "a" not in window
    assert window.seen("a") is False  # out of the window: let through again
    window = DedupWindow(2)
    window.remember(["a", "b"])
    window.seen("a")  # seen again: now the newest, so "b" goes first
    window.seen("c")
    assert "a" in window
    assert "b" not in window
    for n in range(10_000):
        window.seen(str(n))
    assert len(window) == 2


def test_remember_seeds_the_window_with_ids_handled_before() -> None:
    window = DedupWindow(10)
    window.remember(["x", "y"])
    assert window.seen("y") is True
    assert window.seen("z") is False


def test_a_window_holds_at_least_one_id() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DedupWindow(0)
