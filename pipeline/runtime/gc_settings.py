"""The cyclic collector's settings that a long-running command makes once, at start."""

from __future__ import annotations

import gc


def settle_gc() -> None:
    """Keep the cyclic collector off the hot path once everything long-lived exists.

    What start-up built (modules, the app, clients) lives as long as the process; frozen,
    no collection walks it again. A webhook or a record frees almost all it allocates by
    reference count, yet at the default threshold (700) the collector ran every few dozen
    requests and a full pass over the heap every few thousand: ~3.5 us a request and
    pauses of tens of ms at the tail (the loader: a sixth of its event loop's time). A
    higher first threshold keeps cycles (exceptions) bounded.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
