"""``plug-pipeline live``: the contact centre's wallboard of now, as its own process.

    plug-pipeline live [--port N] [--host ADDR]

Viewer tokens (``PLUG_PIPELINE_VIEWER_TOKENS``, ``tenant=token,...``) are required: each
names the one tenant its holder sees. TLS, the edge limits and the KPI settings are the
ingress's (``PLUG_PIPELINE_TLS_*``, ``PLUG_PIPELINE_KPI_*``, ...). SIGTERM or SIGINT:
the listener closes, the streams end, the feed stops.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Iterable

from pipeline import config as configuration
from pipeline import serve
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.http.guard import GuardedRunner, Limits, handler_args
from pipeline.http.tokens import TokenTable
from pipeline.live import page
from pipeline.live.alerts.service import build_alerts
from pipeline.live.board import Board
from pipeline.live.feed import Feed
from pipeline.live.figures import Listener
from pipeline.live.metrics import LiveMetrics
from pipeline.live.service import LiveService
from pipeline.live.state import LiveState
from pipeline.runtime.gc_settings import settle_gc

log = logging.getLogger(__name__)

_FLAGS = ("bootstrap_servers", "topic_prefix", "tls_cert", "tls_key", "alerts_file")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("live", help="serve the contact centre's wallboard of now")
    p.add_argument(
        "--port", dest="live_port", type=int, help="port to listen on (PLUG_PIPELINE_LIVE_PORT)"
    )
    p.add_argument(
        "--host", dest="live_host", help="address to listen on (PLUG_PIPELINE_LIVE_HOST)"
    )
    configuration.add_flags(p, *_FLAGS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = configuration.load(
        None,
        live_port=args.live_port,
        live_host=args.live_host,
        **configuration.flag_values(args, *_FLAGS),
    )
    if not config.viewer_tokens:
        raise ConfigError(
            "no viewer tokens: set PLUG_PIPELINE_VIEWER_TOKENS (tenant=token,...); "
            "each token shows one tenant's wallboard"
        )
    ssl_context = serve.tls_context(config)
    try:  # bound first: a taken port ends the start in one line, before Kafka is asked
        sock = serve.listening_socket(config.live_host, config.live_port, reuse_port=False)
    except serve.CannotListen as exc:
        print(f"plug-pipeline live: {exc}", file=sys.stderr)
        return serve.EXIT_CANNOT_LISTEN
    asyncio.run(live(config, ssl_context, sock=sock))
    return 0


def build(config: Config, listeners: Iterable[Listener] = ()) -> LiveService:
    """The service: state, board (with ``listeners``), feed, metrics, page."""
    state = LiveState(config.kpi_time_zone, config.kpi_sla_seconds)
    board = Board(state, listeners, tenants=config.viewer_tokens)
    metrics = LiveMetrics()
    feed = Feed(config.kafka, board, metrics)
    viewers = TokenTable(config.viewer_tokens)
    return LiveService(config, board, feed, metrics, viewers, page.build())


async def live(
    config: Config,
    ssl_context: ssl.SSLContext | None,
    listeners: Iterable[Listener] = (),
    sock: socket.socket | None = None,
) -> None:
    """Serve the wallboard until SIGTERM / SIGINT (on ``sock``, made here when None)."""
    if sock is None:
        sock = serve.listening_socket(config.live_host, config.live_port, reuse_port=False)
    alerts = build_alerts(config.alerts_file, time_zone=config.kpi_time_zone)
    if alerts is not None:
        listeners = [*listeners, alerts.on_now]
        alerts.start()
    service = build(config, listeners)
    runner = GuardedRunner(
        service,
        Limits.of(config),
        handle_signals=False,
        access_log=None,  # the default access log would print viewer tokens from URLs
        shutdown_timeout=config.shutdown_timeout_s,
        **handler_args(config),
    )
    await runner.setup()
    site = serve.Site(
        runner,
        sock,
        ssl_context=ssl_context,
        handshake_timeout_s=config.tls_handshake_timeout_s,
    )
    await site.start()
    settle_gc()
    scheme = "https" if ssl_context else "http"
    log.info(
        "wallboard on %s://%s:%d/ for %d tenants",
        scheme,
        config.live_host,
        config.live_port,
        len(config.viewer_tokens),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stopping the wallboard")
    await runner.cleanup()
    if alerts is not None:
        await alerts.close()
    log.info("stopped")
