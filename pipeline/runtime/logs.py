"""Log set-up, in one place for every command: text for people, JSON lines for machines.

``PLUG_PIPELINE_LOG_FORMAT=json`` (or ``--log-format json``) writes one JSON object per
line with stable field names: ``time`` (UTC, ISO 8601, milliseconds), ``level``,
``logger``, ``message``, and ``exception`` when a traceback is attached. In either format a
token never reaches the log: ``token=`` query values and bearer credentials are masked in
messages and tracebacks alike (a library's error may quote a URL with its query).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

import orjson

from pipeline.config import setting
from pipeline.errors import ConfigError
from pipeline.runtime.logfilter import throttle_library_logs

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SECRETS = re.compile(r"(?i)((?:[?&;]|%3F|%26)token(?:=|%3D)|bearer\s+)[^\s&;'\"<>,)]+")


def mask(text: str) -> str:
    """``...?token=s3cret`` -> ``...?token=***``; ``Bearer s3cret`` -> ``Bearer ***``."""
    return _SECRETS.sub(r"\1***", text)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; these field names are an interface, keep them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info))
        elif record.stack_info:
            entry["exception"] = mask(self.formatStack(record.stack_info))
        return orjson.dumps(entry).decode()


def chosen_format(environ: Mapping[str, str], flag: str | None = None) -> str:
    """The flag, else ``PLUG_PIPELINE_LOG_FORMAT``, else text; ConfigError if unknown."""
    chosen = (flag or environ.get(setting("log_format").env) or "text").lower()
    if chosen not in FORMATS:
        raise ConfigError(f"log format {chosen!r} is not one of {', '.join(FORMATS)}")
    return chosen


def setup(log_format: str, verbose: bool = False, stream: TextIO | None = None) -> None:
    """Route every logger (ours and the libraries') through one handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    throttle_library_logs("aiokafka")  # its retry loop logs every attempt during an outage
    # aiokafka's debug lines quote records' keys and values, which hold customers' phones
    # and texts: even with -v they stay out of the logs.
    logging.getLogger("aiokafka").setLevel(logging.INFO)
