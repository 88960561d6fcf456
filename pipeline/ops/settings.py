"""``plug-pipeline settings``: every setting, its variable, flag and default, as Markdown."""

from __future__ import annotations

import argparse

from pipeline import config as configuration


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("settings", help="print every setting as a Markdown table")
    p.set_defaults(func=_command)


def _command(_args: argparse.Namespace) -> int:
    print(configuration.settings_markdown(), end="")
    return 0
