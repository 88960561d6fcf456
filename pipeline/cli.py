"""The console script: ``plug-pipeline serve | schemas | register-webhooks | simulate``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from pipeline import config as configuration
from pipeline import logs, openapi, register, replay, spool_command
from pipeline.consume import tail
from pipeline.errors import ConfigError
from pipeline.ops import doctor, topics
from pipeline.report import command as report
from pipeline.simulate import command as simulate
from pipeline.warehouse import command as load

log = logging.getLogger("pipeline")

EXIT_CONFIG = 2


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


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the ingress")
    configuration.add_flags(p, *_SERVE_SETTINGS)
    p.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    config = configuration.load(
        None, log_format=args.log_format, **configuration.flag_values(args, *_SERVE_SETTINGS)
    )
    from pipeline import serve

    if not config.auth_enabled:
        log.warning("no tenant tokens configured (PLUG_PIPELINE_TOKENS): every request is accepted")
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    return serve.run(config, args.workers)


def _settings_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("settings", help="print every setting as a Markdown table")
    p.set_defaults(func=lambda _args: print(configuration.settings_markdown(), end="") or 0)


def _schemas_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "schemas", help="write the JSON Schema of every topic and the AsyncAPI document"
    )
    p.add_argument("--out", default="schemas", help="directory to write into (default: schemas)")
    p.add_argument("--prefix", default="plug", help="topic prefix used in file names")
    p.set_defaults(func=_schemas)


def _schemas(args: argparse.Namespace) -> int:
    from pipeline.asyncapi import write_asyncapi
    from pipeline.schemas import write_schemas

    for path in write_schemas(args.out, args.prefix):
        print(path)
    print(write_asyncapi(args.out, args.prefix))
    print(openapi.write_openapi(args.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plug-pipeline", description="Plug webhooks in, typed events on Kafka out."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    configuration.add_flags(parser, "log_format")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _schemas_parser(sub)
    _settings_parser(sub)
    register.add_parser(sub)
    replay.add_parser(sub)
    spool_command.add_parser(sub)
    simulate.add_parser(sub)
    tail.add_parser(sub)
    report.add_parser(sub)
    load.add_parser(sub)
    topics.add_parser(sub)
    doctor.add_parser(sub)
    _log_format_everywhere(parser)
    return parser


def _log_format_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--log-format`` after any command too; SUPPRESS keeps a value given before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument(
                    "--log-format",
                    dest="log_format",
                    default=argparse.SUPPRESS,
                    help=f"{configuration.setting('log_format').help} (PLUG_PIPELINE_LOG_FORMAT)",
                )
                _log_format_everywhere(command)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        logs.setup(logs.chosen_format(os.environ, args.log_format), verbose=args.verbose)
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"plug-pipeline: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return code
