"""build_app(config): routes, typed state, and resources opened and closed in order."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from pipeline.config import Config
from pipeline.http import handlers
from pipeline.http.keys import CONFIG, SINK, STATE, State
from pipeline.http.ratelimit import RateLimiter
from pipeline.http.responses import errors_middleware
from pipeline.http.telemetry import responses_middleware
from pipeline.metrics import METRICS
from pipeline.route import deadletter_topic
from pipeline.sink.base import Sink
from pipeline.tokens import TokenTable
from pipeline.webhooks import Webhook


def build_app(config: Config, sink: Sink | None = None) -> web.Application:
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
    # The webhook handler streams the body under its own limit; this one guards the rest.
    app = web.Application(
        middlewares=[responses_middleware, errors_middleware],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG] = config
    app[SINK] = sink
    app[STATE] = state = State(tokens=TokenTable(config.tokens))
    if config.rate_limit_per_s > 0:
        state.limiter = RateLimiter(config.rate_limit_per_s, config.rate_limit_burst)
    METRICS.in_flight.set_function(lambda: state.in_flight)  # read at scrape time
    app.cleanup_ctx.append(_sink_ctx)
    app.on_shutdown.append(_stop_accepting)
    for hook in Webhook:
        app.router.add_post(f"/webhooks/{hook.value}", handlers.webhook_handler(hook))
    app.router.add_route("*", "/webhooks/{event}", handlers.not_a_webhook)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get("/openapi.json", handlers.openapi)
    return app


async def _sink_ctx(app: web.Application) -> AsyncIterator[None]:
    sink = app[SINK]
    await sink.start()
    yield
    await sink.stop()


async def _stop_accepting(app: web.Application) -> None:
    # /readyz fails from here on, so a load balancer stops sending before we close.
    app[STATE].stopping = True
