"""build_ingress(config): the sink, the state, the routes, and their lifecycle in order."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.http.dispatch import Dispatch
from pipeline.http.handlers import Endpoints
from pipeline.http.ratelimit import RateLimiter
from pipeline.http.state import State
from pipeline.http.tokens import TokenTable
from pipeline.route import deadletter_topic
from pipeline.runtime.metrics import METRICS
from pipeline.sink.base import Sink
from pipeline.webhooks import Webhook


class Ingress:
    """The ingress as ``GuardedRunner`` serves it (``pipeline.http.guard.Service``).

    ``handle`` is the dispatch every request goes through. The sink starts before the
    first request and stops after the last one; readiness fails from the moment the
    listener closes, so a load balancer stops sending while in-flight requests finish.
    """

    def __init__(self, config: Config, sink: Sink, state: State) -> None:
        self.config = config
        self.sink = sink
        self.state = state
        self.endpoints = Endpoints(config, sink, state)
        self.handle = Dispatch(self.endpoints.routes(), tuple(w.value for w in Webhook))
        self._started = False

    async def start(self) -> None:
        await self.sink.start()
        self._started = True

    async def shutdown(self) -> None:
        self.state.stopping = True

    async def stop(self) -> None:
        if self._started:  # a sink that failed to start has nothing to close
            self._started = False
            await self.sink.stop()


def build_ingress(config: Config, sink: Sink | None = None) -> Ingress:
    """The ingress. ``sink`` defaults to Kafka; tests of the HTTP layer pass a fake."""
    if sink is None:
        from pipeline.sink.kafka import KafkaSink

        sink = KafkaSink(config)
        if config.spool_dir is not None:
            from pipeline.sink.spooled import SpooledSink

            sink = SpooledSink(
                sink,
                config.spool_dir,
                config.spool_max_bytes,
                deadletter_topic=deadletter_topic(config.topic_prefix),
                shutdown_drain_s=config.shutdown_timeout_s / 2,
            )
    state = State(tokens=TokenTable(config.tokens))
    if config.rate_limit_per_s > 0:
        state.limiter = RateLimiter(config.rate_limit_per_s, config.rate_limit_burst)
    METRICS.in_flight.set_function(lambda: state.in_flight)  # read at scrape time
    return Ingress(config, sink, state)
