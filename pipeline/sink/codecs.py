"""Compression levels for the producer, which aiokafka does not let us choose, and its lz4.

aiokafka compresses lz4 at level 9 (``aiokafka.codec.lz4_encode``'s default: "used by the
broker itself"), gzip at 9 and zstd at 3, and its producer takes no level. On a loopback or
a LAN, level 9 costs several times the CPU of level 1 for a few percent fewer bytes
(``make bench-compression``). The record batch builders call the module-level names
``lz4_encode``, ``gzip_encode`` and ``zstd_encode``; ``set_levels`` rebinds those names, in
the C builder and the pure-Python one, to functions with our level. The bytes are the
codec's own format: any consumer reads them.

For lz4 the function is ours (``lz4_frame``), not aiokafka's: the same LZ4 frame format,
made by the lz4 library's frame API in blocks of up to 4 MB instead of cramjam's 64 KB. A
batch of record values then compresses as one block, with the whole batch as its window:
12 finishAttendance webhooks' records (786 KB) took 131 us instead of 234 and came to 59 KB
instead of 83 (bench/RESULTS.md). Blocks stay independent and carry no checksum, as Kafka's
Java client writes them and as its broker and every client read them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import lz4.frame
from aiokafka import codec
from aiokafka.record import default_records

from pipeline.config import COMPRESSION_LEVELS, DEFAULT_COMPRESSION_LEVELS, Config

# aiokafka's codec ids, by the names our settings use
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def lz4_frame(payload: bytes, level: int = 1) -> bytes:
    """An LZ4 frame of independent blocks of up to 4 MB, without a content checksum.

    ``level`` as aiokafka's: 0-2 the fast compressor, 3-16 the high-compression one.
    """
    frame: bytes = lz4.frame.compress(
        payload,
        compression_level=level,
        block_size=lz4.frame.BLOCKSIZE_MAX4MB,
        block_linked=False,  # Kafka reads independent blocks only
        content_checksum=False,
    )
    return frame


_ENCODERS: dict[str, tuple[str, Callable[..., bytes], str]] = {
    # codec -> (name the builders call, aiokafka's function, its level keyword)
    "lz4": ("lz4_encode", codec.lz4_encode, "level"),
    "gzip": ("gzip_encode", codec.gzip_encode, "compresslevel"),
    "zstd": ("zstd_encode", codec.zstd_encode, "level"),
}


def levels_for(config: Config) -> dict[str, int]:
    """The level to use for the configured codec (validated by ``pipeline.config``)."""
    compression = config.compression
    if compression is None or compression not in COMPRESSION_LEVELS:
        return {}
    if config.compression_level is None:
        return {k: v for k, v in DEFAULT_COMPRESSION_LEVELS.items() if k == compression}
    return {compression: config.compression_level}


def _builder_modules() -> list[ModuleType]:
    modules: list[ModuleType] = [default_records]
    try:
        from aiokafka.record._crecords import default_records as compiled

        modules.append(compiled)
    except ImportError:  # pure-Python install (AIOKAFKA_NO_EXTENSIONS)
        pass
    return modules


# Our function for a codec, where it is not aiokafka's: used whenever a level is set.
_OURS: dict[str, Callable[..., bytes]] = {"lz4": lz4_frame}


def set_levels(levels: Mapping[str, int]) -> None:
    """Use these levels from now on (process-wide); a codec not named gets aiokafka's own
    function at aiokafka's level."""
    for name, level in levels.items():
        if name not in _ENCODERS or level not in COMPRESSION_LEVELS[name]:
            raise ValueError(f"no level {level} for {name}")
    for name, (attribute, encode, keyword) in _ENCODERS.items():
        function: Callable[..., Any] = encode
        if name in levels:
            function = functools.partial(_OURS.get(name, encode), **{keyword: levels[name]})
        for module in _builder_modules():
            setattr(module, attribute, function)
