"""The console script ``plug-pipeline``: the parser only.

Every command is a module beside the stage it drives that exposes
``add_parser(subparsers)``; the verb, its flags and the function it runs are there.
``COMMANDS`` lists them in the order ``--help`` shows them; docs/architecture.md maps
each verb to its module (a unit test keeps the two in step).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from pipeline import config as configuration
from pipeline import serve
from pipeline.consume import tail
from pipeline.errors import ConfigError
from pipeline.extras import MissingExtra
from pipeline.live.alerts import command as alerts
from pipeline.ops import doctor, register, replay, settings, spool, topics
from pipeline.privacy import command as forget
from pipeline.report import command as report
from pipeline.runtime import logs
from pipeline.simulate import command as simulate
from pipeline.specs import command as schemas
from pipeline.warehouse import access, grant, rekey
from pipeline.warehouse import command as load

EXIT_CONFIG = 2

AddParser = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

COMMANDS: tuple[AddParser, ...] = (
    serve.add_parser,
    schemas.add_parser,
    settings.add_parser,
    register.add_parser,
    replay.add_parser,
    spool.add_parser,
    simulate.add_parser,
    tail.add_parser,
    report.add_parser,
    load.add_parser,
    access.add_parser,
    grant.add_parser,
    topics.add_parser,
    doctor.add_parser,
    forget.add_parser,
    rekey.add_parser,
    alerts.add_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plug-pipeline", description="Plug webhooks in, typed events on Kafka out."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    configuration.add_flags(parser, "log_format")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser in COMMANDS:
        add_parser(sub)
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
    except MissingExtra as exc:  # its message names the command and the extra
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    return code
