"""Long-running commands leave the cyclic collector off their hot path, but still collecting."""

from __future__ import annotations

import gc

from pipeline.runtime.gc_settings import settle_gc


def test_start_up_objects_are_frozen_and_cycles_still_collected() -> None:
    before = gc.get_threshold()
    try:
        settle_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] > before[0]
        assert gc.isenabled()  # raised, not switched off: cycles are still freed
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
