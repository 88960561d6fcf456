"""An in-memory sink honouring the Sink contract, for unit tests of the HTTP layer."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import BrokerUnavailable
from pipeline.record import Record
from pipeline.sink.base import Durability


class MemorySink:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.available = True
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def publish(self, records: Sequence[Record]) -> Durability:
        if not self.available:
            raise BrokerUnavailable("the in-memory broker is switched off")
        self.records.extend(records)
        return "published"

    async def ready(self) -> bool:
        return self.available

    def describe(self) -> dict[str, object]:
        return {"records": len(self.records)}

    async def stop(self) -> None:
        self.started = False
