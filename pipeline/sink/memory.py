"""An in-memory sink honouring the Sink contract, for unit tests of the HTTP layer.

Like Kafka it can be switched off (``BrokerUnavailable``), refuse records over a size
(``TooLargeForKafka``, the others of the call still taken) and declare itself unhealthy.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import BrokerUnavailable, TooLargeForKafka
from pipeline.record import Record
from pipeline.sink.base import Durability


class MemorySink:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.available = True
        self.started = False
        self.max_value_bytes: dict[str, int] = {}  # topic -> largest value taken
        self.unhealthy: str | None = None

    async def start(self) -> None:
        self.started = True

    async def publish(self, records: Sequence[Record]) -> Durability:
        if not self.available:
            raise BrokerUnavailable("the in-memory broker is switched off")
        refused = [r for r in records if len(r.value) > self.max_value_bytes.get(r.topic, 1 << 62)]
        self.records.extend(r for r in records if r not in refused)
        if refused:
            raise TooLargeForKafka("over the in-memory topic's limit", refused)
        return "published"

    async def ready(self) -> bool:
        return self.available

    def health(self) -> str | None:
        return self.unhealthy

    def describe(self) -> dict[str, object]:
        return {"records": len(self.records)}

    async def stop(self) -> None:
        self.started = False
