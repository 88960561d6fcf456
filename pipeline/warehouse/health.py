"""Whether the warehouse answers, as the loader last saw it: told once, in the log and
in metrics.

A warehouse cut off by the network does not refuse: its packets vanish, and only the
connection's timeouts (``postgres.py``) turn the silence into an error. Each error and
each answer comes here; the first error is a warning naming the target, a long outage
is told again every ``REMIND_S``, and the first answer after it says how long it took.
The loader also asks the warehouse when it has not heard from it in ``PROBE_S`` (an
idle loader would otherwise learn of a dead connection only at its next batch).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Gauge

log = logging.getLogger(__name__)

PROBE_S = 5.0  # no answer for this long: the loader asks (target.ping)
REMIND_S = 30.0  # an outage is told again this often


class WarehouseHealth:
    """Up or down, since when; ``up`` and ``last_ok`` are Prometheus gauges (0/1 and the
    epoch seconds of the last answer)."""

    def __init__(
        self,
        target: str,
        up: Gauge,
        last_ok: Gauge,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.target = target  # described without its password (Target.describe)
        self._up_gauge = up
        self._last_ok_gauge = last_ok
        self._clock = clock
        self._wall = wall
        self.down_since: float | None = None
        self._told_at = 0.0
        self._failed_at = 0.0
        self.last_ok = clock()
        up.set(1)
        last_ok.set(wall())

    @property
    def up(self) -> bool:
        return self.down_since is None

    def ok(self) -> None:
        """The warehouse answered."""
        now = self._clock()
        self.last_ok = now
        self._last_ok_gauge.set(self._wall())
        if self.down_since is not None:
            log.warning(
                "warehouse reachable again: %s, after %.1fs", self.target, now - self.down_since
            )
            self.down_since = None
            self._up_gauge.set(1)

    def failed(self, what: str, error: BaseException, retry_in: float) -> None:
        """``what`` found the warehouse unavailable; it is tried again in ``retry_in`` s."""
        now = self._clock()
        self._failed_at = now
        if self.down_since is None:
            self.down_since = now
            self._told_at = now
            self._up_gauge.set(0)
            log.warning(
                "warehouse unavailable: %s (%s), retrying every %.1fs at most: %s",
                self.target, what, retry_in, error,
            )  # fmt: skip
        elif now - self._told_at >= REMIND_S:
            self._told_at = now
            log.warning(
                "warehouse unavailable: %s still, after %.0fs: %s",
                self.target, now - self.down_since, error,
            )  # fmt: skip
        else:
            log.debug("%s: warehouse still unavailable, retrying in %.1fs", what, retry_in)

    def probe_due(self, retry_s: float) -> bool:
        """Whether the loader should ask the warehouse now: silent for ``PROBE_S`` while
        up, ``retry_s`` after the last failure while down."""
        now = self._clock()
        if self.down_since is None:
            return now - self.last_ok >= PROBE_S
        return now - self._failed_at >= retry_s
