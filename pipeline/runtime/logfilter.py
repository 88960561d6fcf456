"""A log filter that keeps a library's retry loop from flooding the log.

During a broker outage aiokafka logs "Unable connect to node" at ERROR on every retry:
tens of thousands of lines a minute, which bury the lines that matter and cost CPU. The
filter lets the first record of each message template through, then at most one every
``every_s`` seconds, saying how many were suppressed in between.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

_MAX_TEMPLATES = 1000


class Throttle(logging.Filter):
    """Throttles records of loggers named ``prefixes`` (and their children); passes others."""

    def __init__(
        self,
        prefixes: tuple[str, ...],
        every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.every_s = every_s
        self._clock = clock
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}  # -> (last shown, hidden)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, record.msg)
        now = self._clock()
        shown_at, hidden = self._seen.get(key, (None, 0))
        if shown_at is not None and now - shown_at < self.every_s:
            self._seen[key] = (shown_at, hidden + 1)
            return False
        if len(self._seen) >= _MAX_TEMPLATES and key not in self._seen:
            self._seen.clear()  # a bound, not an LRU: templates are few in practice
        self._seen[key] = (now, 0)
        if hidden:
            record.msg = f"{record.msg} ({hidden} more like this in the last {self.every_s:g} s)"
        return True


def throttle_library_logs(*names: str, every_s: float = 30.0) -> None:
    """Throttle these libraries' records on every handler of the root logger.

    On the handlers, not the loggers: a logger's filters do not see its children's records.
    """
    throttle = Throttle(names, every_s)
    for handler in logging.getLogger().handlers:
        handler.addFilter(throttle)
