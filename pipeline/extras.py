"""The optional parts of an install, and the error a command gives when one is missing.

The core install is the ingress and the Kafka tools (``serve``, ``tail``, ``replay``,
``topics``, ...). ``load`` needs the ``warehouse`` extra (DuckDB, Arrow, PostgreSQL's
driver), ``report`` the ``report`` extra (the warehouse's drivers and plotly), and an
Iceberg lake (``load --to iceberg+...``, ``lake``) the ``lake`` extra (pyiceberg and the
warehouse's); ``all`` is every one. The CLI imports every command at start, so the
modules of an extra are imported only inside the commands that use them; a command
checks its extra first and stops with one line naming it, exit code 2. ``EXTRAS`` and
pyproject.toml are kept in step by a test.
"""

from __future__ import annotations

import importlib.util

WAREHOUSE = ("duckdb", "pyarrow", "psycopg")
# The report reads the warehouse: its extra includes the warehouse's.
EXTRAS: dict[str, tuple[str, ...]] = {
    "warehouse": WAREHOUSE,
    "report": (*WAREHOUSE, "plotly"),
    "lake": (*WAREHOUSE, "pyiceberg"),
}


class MissingExtra(Exception):
    """A command needs an extra that is not installed; the message says how to add it."""

    def __init__(self, command: str, extra: str) -> None:
        super().__init__(
            f"plug-pipeline {command} needs the {extra} extra: pip install 'plug-pipeline[{extra}]'"
        )
        self.command = command
        self.extra = extra


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here, found without importing them
    (Arrow alone costs tens of megabytes; a PostgreSQL loader never loads it)."""
    absent = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            absent.append(module)
    return absent


def require(command: str, extra: str) -> None:
    """Raise ``MissingExtra`` unless every module of ``extra`` is installed."""
    if missing(extra):
        raise MissingExtra(command, extra)
