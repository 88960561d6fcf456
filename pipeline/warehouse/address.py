"""What a warehouse address names: a DuckDB file, a PostgreSQL server or an Iceberg catalog.

``load --to``, ``report --from`` and ``subject --from`` all read an address here, so a
scheme is known once. An address with no scheme is a DuckDB file path; one whose scheme
is not known is refused at once, with the ones that are: taken as a path it made a folder
tree of the URL (``mysql:/x@h/``) and a DuckDB file in it.
"""

from __future__ import annotations

import argparse
import re
from typing import Literal

from pipeline.errors import ConfigError

Kind = Literal["duckdb", "postgresql", "iceberg"]

# scheme -> kind; ``postgres://`` is PostgreSQL's own alias of ``postgresql://``
SCHEMES: dict[str, Kind] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "iceberg+postgresql": "iceberg",
    "iceberg+postgres": "iceberg",
    "iceberg+sqlite": "iceberg",
}
# RFC 3986's scheme, followed by "://": a Windows path (C:\x) or a file named a:b has none
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(address: str) -> str | None:
    """The address's scheme, lower-cased; None for a plain path."""
    found = _SCHEME.match(address)
    return found.group(1).lower() if found else None


def kind_of(address: str) -> Kind:
    """The kind of warehouse ``address`` names; ``ConfigError`` for an unknown scheme."""
    scheme = scheme_of(address)
    if scheme is None:
        if not address.strip():
            raise ConfigError("the warehouse address is empty")
        return "duckdb"
    kind = SCHEMES.get(scheme)
    if kind is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ConfigError(
            f"unknown warehouse scheme {scheme}:// (known: {known}; a path without a "
            "scheme is a DuckDB file)"
        )
    return kind


def add_address_argument(parser: argparse.ArgumentParser, flag: str, dest: str) -> None:
    """``--to`` or ``--from`` of a command that opens the warehouse by its address."""
    parser.add_argument(
        flag,
        dest=dest,
        metavar="TARGET",
        help="DuckDB file or postgresql:// URL (default: PLUG_PIPELINE_WAREHOUSE, else "
        "plug.duckdb)",
    )
