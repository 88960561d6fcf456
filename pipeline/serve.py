"""Running the ingress: one process, or N processes sharing one port.

Shutdown on SIGTERM or SIGINT is an ordered sequence: /readyz fails first (so a
load balancer stops sending), then after a short grace the listener closes,
in-flight requests finish, and the app's resources close in reverse order (the
producer flushes, the spool closes), all within a bound.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import ssl
from pathlib import Path

import msgspec
from aiohttp import web

from pipeline.app import build_app
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.http.keys import STATE

log = logging.getLogger(__name__)


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context when a certificate is configured; ConfigError if unusable."""
    if not (config.tls_cert and config.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate/key: {exc}") from exc
    return context


def run(config: Config, workers: int = 1) -> int:
    tls_context(config)  # refuse a bad certificate before any worker starts
    if workers <= 1:
        _run_one(config, reuse_port=False)
        return 0
    return _run_many(config, workers)


def _run_one(config: Config, reuse_port: bool) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        pass
    asyncio.run(serve(config, tls_context(config), reuse_port))


async def serve(
    config: Config, ssl_context: ssl.SSLContext | None = None, reuse_port: bool = False
) -> None:
    app = build_app(config)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,  # the default access log would print tokens from query strings
        shutdown_timeout=config.shutdown_timeout_s,
    )
    await runner.setup()
    site = web.TCPSite(
        runner, config.host, config.port, ssl_context=ssl_context, reuse_port=reuse_port or None
    )
    await site.start()
    scheme = "https" if ssl_context else "http"
    log.info("listening on %s://%s:%d", scheme, config.host, config.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stopping: readiness off, then closing the listener")
    app[STATE].stopping = True
    if config.shutdown_grace_s > 0:
        # A deliberate grace period for load balancers to see /readyz fail.
        await asyncio.sleep(config.shutdown_grace_s)
    await runner.cleanup()
    log.info("stopped")


def _worker_config(config: Config, index: int) -> Config:
    """Each worker gets a spool of its own: a spool has one writer."""
    if config.spool_dir is None:
        return config
    return msgspec.structs.replace(
        config, spool_dir=str(Path(config.spool_dir) / f"worker-{index}")
    )


def _run_many(config: Config, workers: int) -> int:
    """N processes bound to one port with SO_REUSEPORT; the kernel spreads connections."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_run_one, args=(_worker_config(config, i), True), name=f"worker-{i}")
        for i in range(workers)
    ]
    for p in procs:
        p.start()

    def forward(_signum: int, _frame: object) -> None:
        # each worker shuts down gracefully on its own SIGTERM
        for p in procs:
            if p.is_alive():
                p.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()
    return max((p.exitcode or 0) for p in procs)
