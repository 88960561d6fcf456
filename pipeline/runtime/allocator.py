"""glibc's allocator, tuned for each long-running command's way of using memory.

The ingress (``keep_freed_memory``) frees and takes the same memory again at once: every
webhook allocates a few buffers of tens of KB (the body, the encoded event, Kafka's
record batches growing to a MiB) and frees them a millisecond later. With glibc's defaults
the top of the heap is given back to the kernel as soon as 128 KiB of it is free, and
blocks above a threshold get their own mmap: the next webhook faults the same pages in
again, zeroed. On the 40-message finishAttendance that was 24-29 page faults and ~80 us of
kernel time per request (a fifth of its CPU); with these settings, none.

What it costs: up to ``TRIM_THRESHOLD`` of freed heap stays resident after a burst, and
blocks under ``MMAP_THRESHOLD`` come from the heap. Peak RSS does not grow from it (that
memory was in use at the peak).

The loader (``map_large_blocks``) holds a few large batches at a time instead; see
``LOADER_MMAP_THRESHOLD``. Only glibc has ``mallopt``; elsewhere nothing changes, and
``GLIBC_TUNABLES`` set by an operator wins over these.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

# mallopt's parameter numbers, from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

TRIM_THRESHOLD = 32 << 20  # free heap kept before the top is given back
TOP_PAD = 4 << 20  # extra asked of the kernel each time the heap grows (untouched: not resident)
MMAP_THRESHOLD = 4 << 20  # blocks at least this large get their own mapping

# The loader holds a few batches of several MB at a time (a Kafka fetch, a batch's Arrow
# columns, DuckDB's blocks), each freed after its transaction. glibc's default threshold
# follows the largest block freed, up to 32 MiB, so after the first such batch every later
# one came from the heap, whose peak then held the old batches' holes besides the live
# ones. A fixed 1 MiB gives each large block a mapping of its own, unmapped when freed:
# a 200,000 record replay into DuckDB (its limit at 32 MB) peaked at 227-236 MB of RSS
# instead of 243-253, at an events/s within the runs' noise (bench/RESULTS.md).
LOADER_MMAP_THRESHOLD = 1 << 20


def keep_freed_memory() -> bool:
    """The ingress's settings; False (and nothing changed) off glibc or under GLIBC_TUNABLES."""
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _mallopt((*settings, (_M_TOP_PAD, TOP_PAD)))


def map_large_blocks() -> bool:
    """The loader's setting (a fixed mmap threshold); False as ``keep_freed_memory``."""
    return _mallopt(((_M_MMAP_THRESHOLD, LOADER_MMAP_THRESHOLD),))


def arrow_from_malloc() -> bool:
    """Arrow's buffers from the C library's malloc (Arrow's "system" pool) instead of the
    mimalloc it bundles; False (nothing changed) when the operator chose a pool with
    ``ARROW_DEFAULT_MEMORY_POOL``. Called before pyarrow is imported, as ``load`` does.

    For the loader's DuckDB target, which builds each batch's columns in Arrow: mimalloc
    keeps freed pages in per-thread heaps, while from malloc a batch's large columns are
    unmapped when freed (``map_large_blocks``). 200,000-record replays into DuckDB peaked
    at 219-223 MB of RSS instead of 229-236, at an events/s within the runs' noise
    (bench/RESULTS.md).

    The variable, not ``pyarrow.set_memory_pool`` alone: that changes the pool pyarrow
    passes where it names one, while other paths of Arrow's C++ (those pyiceberg's scans
    and writes go through) take the default pool, which reads the variable when first
    asked for. A 50,000-event catch-up into a lake peaked at 294-319 MB with the variable,
    398-438 with the pool set after import, 402-456 on mimalloc, 330-359 on jemalloc
    (``make bench-load-memory``, bench/RESULTS.md)."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return False
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:  # imported already: its default pool is chosen
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    return True


def _mallopt(settings: tuple[tuple[int, int], ...]) -> bool:
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False  # the operator's own choice
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc (musl has no mallopt), or no C library to load
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    for param, value in settings:
        if mallopt(param, value) != 1:  # 1 is success
            log.warning("mallopt(%d, %d) was refused; glibc keeps its default for it", param, value)
            return False
    return True
