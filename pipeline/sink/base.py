"""The sink contract the HTTP layer relies on."""

from __future__ import annotations

from typing import Protocol

from pipeline.ingest import Record


class Sink(Protocol):
    async def start(self) -> None:
        """Begin connecting; returns without waiting for the broker."""

    async def publish(self, record: Record) -> None:
        """Return once the record is durable, or raise ``NotDurable``."""

    async def ready(self) -> bool:
        """True when a publish now would reach the broker."""

    async def stop(self) -> None:
        """Flush what was accepted and close, within a bounded time."""
