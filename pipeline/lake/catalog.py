"""An ``iceberg+`` address -> pyiceberg's SQL catalog, its warehouse and namespace.

``iceberg+postgresql://user@host:port/db?warehouse=file:///path`` keeps the catalog (the
pointer to each table's current metadata) in PostgreSQL; ``iceberg+sqlite:////path/c.db``
in a SQLite file, for one machine. ``warehouse`` is where the files go: a local folder
(``file:///...``) or ``s3://...``; with SQLite it defaults to ``warehouse/`` beside the
catalog file. ``namespace`` (default ``plug``) holds the tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog

NAMESPACE = "plug"
CATALOG_NAME = "plug"
# SQLAlchemy's driver for each catalog database: psycopg 3, the warehouse's driver already
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "sqlite": "sqlite",
}
_PASSWORD = re.compile(r"(://[^:/@]+):[^@]*@")


@dataclass(frozen=True)
class LakeAddress:
    catalog_uri: str  # SQLAlchemy's URL of the catalog database
    warehouse: str  # where new tables put their files
    namespace: str

    def describe(self) -> str:
        """Where it writes, without the catalog's password."""
        shown = _PASSWORD.sub(r"\1:***@", self.catalog_uri)
        return f"iceberg:{shown} ({self.namespace}, {self.warehouse})"

    def identifier(self, table: str) -> tuple[str, str]:
        return (self.namespace, table)


def parse(address: str) -> LakeAddress:
    """``iceberg+<catalog database URL>?warehouse=...&namespace=...`` -> its parts."""
    scheme, _, rest = address.partition("://")
    _, _, database = scheme.lower().partition("+")
    driver = _DRIVERS.get(database)
    if driver is None:
        raise ConfigError(
            f"an Iceberg catalog is iceberg+postgresql:// or iceberg+sqlite://, not {scheme}://"
        )
    split = urlsplit(f"{database}://{rest}")
    query = {k: v[-1] for k, v in parse_qs(split.query).items()}
    unknown = set(query) - {"warehouse", "namespace"}
    if unknown:
        raise ConfigError(f"unknown Iceberg address parameters: {', '.join(sorted(unknown))}")
    base = f"{driver}://{rest.partition('?')[0]}"
    warehouse = query.get("warehouse")
    # sqlite:////abs/c.db: the file /abs/c.db (sqlite:///rel.db: rel.db)
    sqlite_file = Path(split.path[1:]) if database == "sqlite" and split.path[1:] else None
    if warehouse is None:
        if sqlite_file is None:
            raise ConfigError("an Iceberg address needs ?warehouse=file:///path (or s3://...)")
        warehouse = (sqlite_file.parent / "warehouse").resolve().as_uri()  # beside the catalog
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    if warehouse.startswith("file://"):
        Path(urlsplit(warehouse).path).mkdir(parents=True, exist_ok=True)
    return LakeAddress(base, warehouse.rstrip("/"), query.get("namespace", NAMESPACE))


def open_catalog(address: LakeAddress) -> SqlCatalog:
    """The catalog, its own tables created if absent; connects at once."""
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        CATALOG_NAME,
        uri=address.catalog_uri,
        warehouse=address.warehouse,
        # a connection from the pool is checked first: a PostgreSQL that restarted
        # under the loader is reconnected to instead of failing the next commit
        pool_pre_ping="true",
    )
