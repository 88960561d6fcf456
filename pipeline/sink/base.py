"""The sink contract the HTTP layer relies on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pipeline.record import Record

# "published": acknowledged by Kafka; "spooled": fsynced in the local spool.
Durability = Literal["published", "spooled"]


class Sink(Protocol):
    async def start(self) -> None:
        """Begin connecting; returns without waiting for the broker."""

    async def publish(self, records: Sequence[Record]) -> Durability:
        """Return once every record is durable (and say how), or raise ``NotDurable``."""

    async def ready(self) -> bool:
        """True when a publish now would reach the broker."""

    def health(self) -> str | None:
        """None while the sink can deliver or heal itself; else why a restart is needed."""

    def describe(self) -> dict[str, object]:
        """Figures for /readyz: connection, spool depth and age."""

    async def stop(self) -> None:
        """Flush what was accepted and close, within a bounded time."""
