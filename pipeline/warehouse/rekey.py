"""``plug-pipeline rekey --tenant T --to TARGET``: a key rotation applied to the warehouse.

Rotating a tenant's pseudonym key is adding a key at the end of its chain
(``PLUG_PIPELINE_PRIVACY_KEYS=acme=k1,acme=k2``). With every loader of the warehouse
stopped, this command moves the stored pseudonyms along the added keys in one
transaction (``chain.py``), so the history still joins with what the loaders store
under the new chain; then the loaders start with the new chain. A loader started with a
chain the warehouse was not moved to refuses to start and names this command.
"""

from __future__ import annotations

import argparse
import sys

import msgspec

from pipeline import config as configuration
from pipeline.errors import ConfigError, WarehouseError
from pipeline.privacy.subject import Pseudonyms
from pipeline.warehouse import chain
from pipeline.warehouse.address import add_address_argument
from pipeline.warehouse.sql import Session
from pipeline.warehouse.target import SqlTarget, open_target

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "rekey",
        help="move a tenant's stored pseudonyms to its rotated key chain (loaders stopped)",
        description="After a key is added to a tenant's chain in PLUG_PIPELINE_PRIVACY_KEYS, "
        "move every pseudonym the warehouse holds for it along the new key, in one "
        "transaction, so the history keeps joining. Stop every loader first.",
    )
    p.add_argument("--tenant", required=True, help="the contact centre whose key was rotated")
    add_address_argument(p, "--to", "target")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = configuration.load(None)
    pseudonyms = Pseudonyms(config.privacy_keys)
    pseudonyms.chain(args.tenant)  # a ConfigError (exit 2) names the setting when missing
    try:
        target = open_target(args.target or config.warehouse)
    except WarehouseError as exc:
        print(f"plug-pipeline rekey: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not isinstance(target, SqlTarget):
        target.close()
        raise ConfigError(f"rekey works on DuckDB and PostgreSQL, not on {target.describe()}")
    try:
        target.migrate()

        def work(session: Session) -> dict[str, int]:
            return chain.apply(session, args.tenant, pseudonyms)

        changed = target.transact(work)
    except WarehouseError as exc:
        print(f"plug-pipeline rekey: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        target.close()
    keys = len(pseudonyms.chain(args.tenant))
    summary = {"tenant": args.tenant, "keys": keys, "changed": changed}
    sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
    if not changed:
        print(f"tenant {args.tenant}: the warehouse is already at this chain", file=sys.stderr)
    return EXIT_OK
