"""Running the ingress: one process, or N processes sharing one port.

Shutdown on SIGTERM or SIGINT is an ordered sequence: /readyz fails first (so a
load balancer stops sending), then after a short grace the listener closes,
in-flight requests finish, and the app's resources close in reverse order (the
producer flushes, the spool closes), all within a bound.

SIGHUP re-reads the tokens file and the TLS certificate and key (certbot renews every
60-90 days). Open connections keep going: the new certificate serves new handshakes,
the new tokens the next request. A file that does not load is logged and the old
values stay.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import sys
from pathlib import Path

import msgspec
from aiohttp import web

from pipeline import config as configuration
from pipeline.app import Ingress, build_ingress
from pipeline.config import Config, load_tokens
from pipeline.errors import ConfigError
from pipeline.http.guard import GuardedRunner, Limits, handler_args
from pipeline.http.state import State
from pipeline.http.tokens import TokenTable
from pipeline.runtime import allocator, logs
from pipeline.runtime.gc_settings import settle_gc
from pipeline.runtime.metrics import METRICS

log = logging.getLogger(__name__)

_SERVE_SETTINGS = (
    "bootstrap_servers",
    "tokens_file",
    "host",
    "port",
    "topic_prefix",
    "max_body_bytes",
    "max_in_flight",
    "ack_timeout_s",
    "spool_dir",
    "compression",
    "tls_cert",
    "tls_key",
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("serve", help="run the ingress")
    configuration.add_flags(p, *_SERVE_SETTINGS)
    p.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    p.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> int:
    config = configuration.load(
        None, log_format=args.log_format, **configuration.flag_values(args, *_SERVE_SETTINGS)
    )
    if not config.auth_enabled:
        log.warning("no tenant tokens configured (PLUG_PIPELINE_TOKENS): every request is accepted")
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    return run(config, args.workers)


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context when a certificate is configured; ConfigError if unusable."""
    if not (config.tls_cert and config.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate/key: {exc}") from exc
    return context


EXIT_CANNOT_LISTEN = 1
_BACKLOG = 128  # aiohttp's own default


class CannotListen(Exception):
    """The port is taken (or the address not ours): said in one line, before anything
    else starts."""


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """The ingress's socket, bound and listening. Made first of all: a port that is taken
    ends the start before any connection to Kafka or any topic is made."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise CannotListen(f"cannot listen on {host}:{port}: {exc}") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def run(config: Config, workers: int = 1) -> int:
    tls_context(config)  # refuse a bad certificate before any worker starts
    try:
        if workers <= 1:
            _run_one(config, reuse_port=False)
            return 0
        # the workers share the port: find it taken here, once, not in each of them
        listening_socket(config.host, config.port, reuse_port=True).close()
    except CannotListen as exc:
        print(f"plug-pipeline serve: {exc}", file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    return _run_many(config, workers)


def _run_one(config: Config, reuse_port: bool) -> None:
    # A SIGHUP before the loop's handler is installed must not end the process (its
    # default action): a worker may get one forwarded while it is still starting.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    allocator.keep_freed_memory()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        pass
    sock = listening_socket(config.host, config.port, reuse_port)
    asyncio.run(serve(config, tls_context(config), sock))


async def serve(
    config: Config, ssl_context: ssl.SSLContext | None = None, sock: socket.socket | None = None
) -> None:
    """Serve until SIGTERM / SIGINT on ``sock`` (made here when None)."""
    if sock is None:
        sock = listening_socket(config.host, config.port, reuse_port=False)
    ingress = build_ingress(config)
    runner = runner_for(ingress)
    await runner.setup()
    guarded = runner.server
    if guarded is not None:
        METRICS.connections_open.set_function(lambda: len(guarded.connections))
    site = Site(
        runner, sock, ssl_context=ssl_context, handshake_timeout_s=config.tls_handshake_timeout_s
    )
    await site.start()
    settle_gc()
    scheme = "https" if ssl_context else "http"
    log.info("listening on %s://%s:%d", scheme, config.host, config.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload, ingress.state, config, ssl_context)
    await stop.wait()
    log.info("stopping: readiness off, then closing the listener")
    ingress.state.stopping = True
    if config.shutdown_grace_s > 0:
        # A deliberate grace period for load balancers to see /readyz fail.
        await asyncio.sleep(config.shutdown_grace_s)
    await runner.cleanup()
    log.info("stopped")


def runner_for(ingress: Ingress) -> GuardedRunner:
    """The runner ``serve`` listens with; the HTTP tests and ``make bench-handler`` use it too."""
    config = ingress.config
    return GuardedRunner(
        ingress,
        Limits.of(config),
        handle_signals=False,
        access_log=None,  # the default access log would print tokens from query strings
        shutdown_timeout=config.shutdown_timeout_s,
        **handler_args(config),
    )


class Site(web.SockSite):
    """A site on a socket bound beforehand, whose TLS handshakes are bounded (asyncio's
    default is 60 s); `live` too."""

    def __init__(self, *args: object, handshake_timeout_s: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._handshake_timeout_s = handshake_timeout_s

    async def start(self) -> None:
        if self._ssl_context is None:
            await super().start()
            return
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server,
            sock=self._sock,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self._handshake_timeout_s,
            backlog=self._backlog,
        )


def reload(state: State, config: Config, ssl_context: ssl.SSLContext | None) -> None:
    """SIGHUP: the tokens file and the certificate, each kept as it was if it fails to load."""
    if config.tokens_file:
        try:
            tokens = load_tokens({}, config.tokens_file)
            if not tokens:
                raise ConfigError("the tokens file is empty; refusing to turn auth off")
        except ConfigError as exc:
            log.error("tokens not reloaded, the old ones stay: %s", exc)
        else:
            table = TokenTable(tokens)
            state.tokens = table
            log.info("tokens reloaded: %r", table)
    if ssl_context is not None and config.tls_cert and config.tls_key:
        try:
            # the same context: listening sockets use it for every new handshake
            ssl_context.load_cert_chain(config.tls_cert, config.tls_key)
        except (OSError, ssl.SSLError) as exc:
            log.error("TLS certificate not reloaded, the old one stays: %s", exc)
        else:
            log.info("TLS certificate reloaded from %s", config.tls_cert)


def _worker_config(config: Config, index: int) -> Config:
    """Each worker gets a spool of its own: a spool has one writer."""
    if config.spool_dir is None:
        return config
    return msgspec.structs.replace(
        config, spool_dir=str(Path(config.spool_dir) / f"worker-{index}")
    )


def _worker(config: Config) -> None:
    # A spawned process starts with logging unset: the parent's set-up is not inherited.
    logs.setup(config.log_format)
    try:
        _run_one(config, reuse_port=True)
    except CannotListen as exc:  # taken since the parent looked
        print(f"plug-pipeline serve: {exc}", file=sys.stderr)
        sys.exit(EXIT_CANNOT_LISTEN)


def _run_many(config: Config, workers: int) -> int:
    """N processes bound to one port with SO_REUSEPORT; the kernel spreads connections."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(_worker_config(config, i),), name=f"worker-{i}")
        for i in range(workers)
    ]
    for p in procs:
        p.start()

    def forward(_signum: int, _frame: object) -> None:
        # each worker shuts down gracefully on its own SIGTERM
        for p in procs:
            if p.is_alive():
                p.terminate()

    def forward_hup(_signum: int, _frame: object) -> None:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGHUP)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, forward_hup)
    for p in procs:
        p.join()
    return max((p.exitcode or 0) for p in procs)
