"""The ingress's mutable state, shared by its handlers and its lifecycle."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.http.ratelimit import RateLimiter
from pipeline.http.tokens import TokenTable


@dataclass
class State:
    in_flight: int = 0
    in_flight_bytes: int = 0
    stopping: bool = False
    # replaced whole when the tokens file is re-read (SIGHUP): a request sees one table
    tokens: TokenTable = field(default_factory=lambda: TokenTable({}))
    limiter: RateLimiter | None = None
