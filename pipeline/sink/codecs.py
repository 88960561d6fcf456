"""Compression levels for the producer, which aiokafka does not let us choose.

aiokafka compresses lz4 at level 9 (``aiokafka.codec.lz4_encode``'s default: "used by the
broker itself"), gzip at 9 and zstd at 3, and its producer takes no level. On a loopback or
a LAN, level 9 costs several times the CPU of level 1 for a few percent fewer bytes
(``make bench-compression``). The record batch builders call the module-level names
``lz4_encode``, ``gzip_encode`` and ``zstd_encode``; ``set_levels`` rebinds those names, in
the C builder and the pure-Python one, to the same functions with our level. The bytes are
the codec's own format at another level: any consumer reads them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from aiokafka import codec
from aiokafka.record import default_records

from pipeline.config import COMPRESSION_LEVELS, DEFAULT_COMPRESSION_LEVELS, Config

# aiokafka's codec ids, by the names our settings use
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
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


def set_levels(levels: Mapping[str, int]) -> None:
    """Use these levels from now on (process-wide); a codec not named gets aiokafka's own."""
    for name, level in levels.items():
        if name not in _ENCODERS or level not in COMPRESSION_LEVELS[name]:
            raise ValueError(f"no level {level} for {name}")
    for name, (attribute, encode, keyword) in _ENCODERS.items():
        function: Callable[..., Any] = encode
        if name in levels:
            function = functools.partial(encode, **{keyword: levels[name]})
        for module in _builder_modules():
            setattr(module, attribute, function)
