"""The Kafka sink: aiokafka with acks=all and idempotence, every wait bounded.

aiokafka's ``send_and_wait`` and ``stop`` can wait forever when the broker is
gone, so every call here runs under a timeout and turns what it raises into
``NotDurable``. The producer is started in the background and restarted after a
failure, so the ingress comes up (and answers 503) while Kafka is away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from pipeline.aio import cancel
from pipeline.config import Config
from pipeline.errors import AckTimeout, BrokerUnavailable
from pipeline.kafka_client import producer_settings
from pipeline.metrics import METRICS
from pipeline.record import Record
from pipeline.sink.base import Durability
from pipeline.sink.topics import ensure_topics

log = logging.getLogger(__name__)

_READY_CACHE_S = 1.0
_RESTART_DELAY_S = 1.0


class KafkaSink:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._ready_at = 0.0
        self._ready = False
        self._published: dict[str, Counter] = {}

    async def start(self) -> None:
        """Connect in the background; wait a little for it, so a fresh ingress starts ready."""
        self._connector = asyncio.create_task(self._connect_loop(), name="kafka-connect")
        await asyncio.wait({self._connector}, timeout=self._config.ack_timeout_s)

    async def _connect_loop(self) -> None:
        while self._producer is None:
            producer = AIOKafkaProducer(**producer_settings(self._config))
            try:
                await asyncio.wait_for(producer.start(), self._config.ack_timeout_s * 2)
            except asyncio.CancelledError:  # shut down while connecting
                await _stop_quietly(producer, self._config.ack_timeout_s)
                raise
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("Kafka not reachable at %s: %s", self._config.bootstrap_servers, exc)
                await _stop_quietly(producer, self._config.ack_timeout_s)
                await asyncio.sleep(_RESTART_DELAY_S)
                continue
            log.info("connected to Kafka at %s", self._config.bootstrap_servers)
            if self._config.create_topics:
                await ensure_topics(self._config)
            self._producer = producer

    def _published_counter(self, topic: str) -> Counter:
        counter = self._published.get(topic)
        if counter is None:  # a handful of topics: made once each, not per record
            counter = self._published[topic] = METRICS.published.labels(topic)
        return counter

    async def wait_connected(self, timeout_s: float = 30.0) -> None:
        """For commands that need Kafka before they start, not the ingress."""
        if self._connector is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._connector), timeout_s)
            except TimeoutError as exc:
                raise BrokerUnavailable(f"Kafka not reachable within {timeout_s:g} s") from exc

    async def publish(self, records: Sequence[Record]) -> Durability:
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("not connected to Kafka yet")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._config.ack_timeout_s):
                # send() can itself wait (full buffer, missing metadata): bound both steps.
                deliveries = [
                    await producer.send(r.topic, r.value, key=r.key, headers=r.headers)
                    for r in records
                ]
                for delivery in deliveries:
                    await delivery
        except TimeoutError as exc:
            raise AckTimeout(
                f"Kafka did not acknowledge within {self._config.ack_timeout_s:g} s"
            ) from exc
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka refused the record: {exc}") from exc
        METRICS.ack_latency.observe(time.perf_counter() - started)
        for r in records:
            self._published_counter(r.topic).inc()
        return "published"

    async def ready(self) -> bool:
        producer = self._producer
        if producer is None:
            return False
        now = time.monotonic()
        if now - self._ready_at < _READY_CACHE_S:
            return self._ready
        try:
            async with asyncio.timeout(min(2.0, self._config.ack_timeout_s)):
                self._ready = bool(await producer.client.fetch_all_metadata())
        except (KafkaError, OSError, TimeoutError):
            self._ready = False
        self._ready_at = time.monotonic()
        return self._ready

    def describe(self) -> dict[str, object]:
        return {"kafka_connected": self._producer is not None}

    async def stop(self) -> None:
        await cancel(self._connector)
        if self._producer is not None:
            await _stop_quietly(self._producer, self._config.ack_timeout_s * 2)
            self._producer = None


async def _stop_quietly(producer: AIOKafkaProducer, timeout_s: float) -> None:
    """Flush and close, giving up after ``timeout_s``: stop() alone can hang on a dead broker."""
    try:
        await asyncio.wait_for(producer.stop(), timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        log.warning("Kafka producer did not close cleanly: %s", exc)
