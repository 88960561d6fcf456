"""A token bucket per tenant: ``rate`` webhooks a second on average, ``burst`` at once.

Off by default: Plug does not retry a refused call, so a 429 loses that event at the
source. It is there for an operator who would rather drop a runaway tenant's excess
than let it crowd out the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, rate_per_s: float, burst: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("the rate must be positive")
        self._rate = rate_per_s
        self._burst = float(burst or max(1, math.ceil(rate_per_s)))
        self._clock = clock
        # tenant -> (tokens left, when counted); tenants come from the token table: bounded
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, tenant: str) -> float:
        """0 when the tenant may go on, else the seconds until its next token."""
        now = self._clock()
        tokens, stamp = self._buckets.get(tenant, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens >= 1:
            self._buckets[tenant] = (tokens - 1, now)
            return 0.0
        self._buckets[tenant] = (tokens, now)
        return (1 - tokens) / self._rate
