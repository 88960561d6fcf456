"""Each tenant's pseudonym key chain as the warehouse was written with it, and ``rekey``.

A pseudonym is ``HMAC(kn, ... HMAC(k1, phone))`` over the tenant's chain
(``privacy/subject.py``). Rotating a key is adding one at the end of the chain; the rows
already stored hold pseudonyms under the shorter chain, so the same customer would get a
second pseudonym and their history would no longer join. ``rekey`` moves the stored
pseudonyms along the new keys (``HMAC(k_new, old)``), which needs neither the phones nor
the old keys' secrets beyond what the chain already holds, in one transaction:
every event's data and its rows (re-derived as the loader made them) and the subjects of
``plug_erasure``.

``plug_pseudonym_chain`` keeps, per tenant, how many keys the stored pseudonyms went
through and the chain's fingerprint (a pseudonym of a fixed number, which names the chain
without revealing it). The loader records it the first time and refuses to start when the
configured chain differs, so a rotation is never half applied.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec

from pipeline.errors import ConfigError
from pipeline.events.models import DATA_OF, Envelope
from pipeline.privacy.subject import Pseudonyms, is_pseudonym, rekey
from pipeline.warehouse import erase
from pipeline.warehouse.sql import TYPES, Dialect, Session, q

CHAIN_TABLE = "plug_pseudonym_chain"
# How a pseudonym begins inside the stored JSON: the rows worth decoding.
_IN_JSON = '"ps:'


def chain_table(dialect: Dialect) -> str:
    types = TYPES[dialect]
    return (
        f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (tenant {types['text']} PRIMARY KEY, "
        f"keys {types['int']} NOT NULL, fingerprint {types['text']} NOT NULL, "
        f"updated_at {types['ts']} NOT NULL)"
    )


def _recorded(session: Session, tenant: str) -> tuple[int, str] | None:
    sql = f"SELECT keys, fingerprint FROM {CHAIN_TABLE} WHERE tenant = ?"
    found = session.query(sql, (tenant,))
    return (int(found[0][0]), str(found[0][1])) if found else None


def _record(session: Session, tenant: str, pseudonyms: Pseudonyms) -> None:
    session.execute(f"DELETE FROM {CHAIN_TABLE} WHERE tenant = ?", (tenant,))
    session.execute(
        f"INSERT INTO {CHAIN_TABLE} (tenant, keys, fingerprint, updated_at) "
        "VALUES (?, ?, ?, now())",
        (tenant, len(pseudonyms.chain(tenant)), pseudonyms.fingerprint(tenant)),
    )


def check(session: Session, pseudonyms: Pseudonyms) -> list[str]:
    """At the loader's start: each keyed tenant's chain recorded if new; a ConfigError if
    one differs from the chain the warehouse was written with. The tenants recorded now."""
    recorded = []
    for tenant in pseudonyms.tenants():
        found = _recorded(session, tenant)
        if found is None:
            _record(session, tenant, pseudonyms)
            recorded.append(tenant)
        elif found[1] != pseudonyms.fingerprint(tenant):
            raise ConfigError(
                f"tenant {tenant!r}: the pseudonym key chain (PLUG_PIPELINE_PRIVACY_KEYS) is "
                f"not the one the warehouse was written with ({found[0]} key(s)); after "
                "adding a key, stop every loader and run `plug-pipeline rekey --tenant "
                f"{tenant} --to TARGET` with the new chain (docs/privacy.md)"
            )
    return recorded


def apply(session: Session, tenant: str, pseudonyms: Pseudonyms) -> dict[str, int]:
    """Move the tenant's stored pseudonyms along the keys added to its chain; the rows
    changed per table (empty when the warehouse is already at this chain)."""
    chain = pseudonyms.chain(tenant)
    found = _recorded(session, tenant)
    if found is None:
        raise ConfigError(
            f"tenant {tenant!r}: the warehouse has recorded no key chain (a loader records "
            "it when it starts with the tenant's key): nothing to rekey"
        )
    keys, fingerprint = found
    if keys == len(chain) and fingerprint == pseudonyms.fingerprint(tenant):
        return {}
    before = Pseudonyms({tenant: chain[:keys]}) if 0 < keys < len(chain) else None
    if before is None or before.fingerprint(tenant) != fingerprint:
        raise ConfigError(
            f"tenant {tenant!r}: the chain given does not begin with the {keys} key(s) the "
            "warehouse was written with: a rotation adds a key at the end, never replaces "
            "or removes one"
        )
    added = chain[keys:]

    def moved(value: str) -> str:
        for key in added:
            value = rekey(value, key)
        return value

    changed: Counter[str] = Counter()
    for table, event_type in erase.EVENT_TYPES.items():
        rows = session.query(
            f"SELECT event_id, {erase.epoch_ms(q('received_at'), session.dialect)}, "
            f"CAST({q('data')} AS TEXT) FROM {q(table.name)} "
            f"WHERE tenant = ? AND strpos(CAST({q('data')} AS TEXT), ?) > 0",
            (tenant, _IN_JSON),
        )
        for event_id, received_at, text in rows:
            mapped = _mapped(msgspec.json.decode(text), moved)
            data = msgspec.json.decode(msgspec.json.encode(mapped), type=DATA_OF[event_type])
            event = Envelope(
                event_id=event_id,
                event_type=event_type.value,
                tenant=tenant,
                received_at=received_at,
                data=data,
            )
            changed.update(erase.replace_event(session, table, event))  # type: ignore[arg-type]
    for request_id, subject in session.query(
        f"SELECT request_id, subject FROM {erase.AUDIT_TABLE} WHERE tenant = ?", (tenant,)
    ):
        if is_pseudonym(subject):
            session.execute(
                f"UPDATE {erase.AUDIT_TABLE} SET subject = ? WHERE request_id = ?",
                (moved(subject), request_id),
            )
            changed[erase.AUDIT_TABLE] += 1
    _record(session, tenant, pseudonyms)
    return dict(changed)


def _mapped(value: Any, moved: Callable[[str], str]) -> Any:
    """``value`` (decoded JSON) with every pseudonym in it moved; nothing else touched."""
    if isinstance(value, str):
        return moved(value) if is_pseudonym(value) else value
    if isinstance(value, list):
        return [_mapped(v, moved) for v in value]
    if isinstance(value, dict):
        return {k: _mapped(v, moved) for k, v in value.items()}
    return value
