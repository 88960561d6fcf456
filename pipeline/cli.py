"""The console script: ``plug-pipeline serve | schemas | register-webhooks | simulate``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pipeline import config as configuration
from pipeline import register, replay
from pipeline.errors import ConfigError
from pipeline.simulate import command as simulate

log = logging.getLogger("pipeline")

EXIT_CONFIG = 2


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the ingress")
    p.add_argument("--bootstrap-servers", help="Kafka brokers (KAFKA_BOOTSTRAP_SERVERS)")
    p.add_argument("--tokens-file", help="file of tenant=token lines (PLUG_PIPELINE_TOKENS_FILE)")
    p.add_argument("--host", help="address to listen on (PLUG_PIPELINE_HOST)")
    p.add_argument("--port", type=int, help="port to listen on (PLUG_PIPELINE_PORT)")
    p.add_argument("--topic-prefix", help="topic name prefix (PLUG_PIPELINE_TOPIC_PREFIX)")
    p.add_argument("--max-body-bytes", type=int, help="body limit (PLUG_PIPELINE_MAX_BODY_BYTES)")
    p.add_argument(
        "--max-in-flight", type=int, help="in-flight limit (PLUG_PIPELINE_MAX_IN_FLIGHT)"
    )
    p.add_argument(
        "--ack-timeout-s", type=float, help="Kafka ack bound (PLUG_PIPELINE_ACK_TIMEOUT_S)"
    )
    p.add_argument("--tls-cert", help="TLS certificate (PLUG_PIPELINE_TLS_CERT)")
    p.add_argument("--tls-key", help="TLS key (PLUG_PIPELINE_TLS_KEY)")
    p.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    flags = {
        k: getattr(args, k)
        for k in (
            "bootstrap_servers",
            "tokens_file",
            "host",
            "port",
            "topic_prefix",
            "max_body_bytes",
            "max_in_flight",
            "ack_timeout_s",
            "tls_cert",
            "tls_key",
        )
    }
    config = configuration.load(None, **flags)
    from pipeline import serve

    if not config.auth_enabled:
        log.warning("no tenant tokens configured (PLUG_PIPELINE_TOKENS): every request is accepted")
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    return serve.run(config, args.workers)


def _schemas_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schemas", help="write the JSON Schema of every topic")
    p.add_argument("--out", default="schemas", help="directory to write into (default: schemas)")
    p.add_argument("--prefix", default="plug", help="topic prefix used in file names")
    p.set_defaults(func=_schemas)


def _schemas(args: argparse.Namespace) -> int:
    from pipeline.schemas import write_schemas

    for path in write_schemas(args.out, args.prefix):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plug-pipeline", description="Plug webhooks in, typed events on Kafka out."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _schemas_parser(sub)
    register.add_parser(sub)
    replay.add_parser(sub)
    simulate.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"plug-pipeline: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return code
