"""``forget``'s local part and its receipt: real spools and quarantine files in tmp_path."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import msgspec
import pytest

from pipeline.privacy.command import (
    IN_USE,
    Published,
    receipt,
    search_local,
    text,
)
from pipeline.privacy.erasure import request
from pipeline.privacy.subject import Pseudonyms
from pipeline.record import Record
from pipeline.sink.spooled import lock
from pipeline.spool import Spool
from pipeline.spool.quarantine import FOLDER, Quarantine

PHONE = "5511987654321"
OTHER = "5521912345678"
DAY_MS = 24 * 60 * 60 * 1000


def _record(tenant: str, phone: str, n: int) -> Record:
    value = f'{{"n":{n},"data":{{"phone":"{phone}","text":"hello"}}}}'.encode()
    return Record(
        topic="plug.message.received",
        key=f"{tenant}:{phone}".encode(),
        value=value,
        headers=[("tenant", tenant.encode()), ("event-id", str(n).encode())],
        event_id=f"e{n}",
    )


def _spool(directory: Path, records: list[Record]) -> None:
    async def fill() -> None:
        spool = await Spool.open(directory, 1 << 20, segment_bytes=400)
        for record in records:
            await spool.append(record)
        await spool.close()

    asyncio.run(fill())


def _quarantine(directory: Path, record: Record) -> Path:
    return asyncio.run(Quarantine(directory / FOLDER, 1 << 20).keep(record, "r", "too large"))


def test_spool_files_holding_the_customer_are_held_with_the_way_out(tmp_path: Path) -> None:
    worker = tmp_path / "worker-0"
    worker.mkdir()
    records = [_record("acme", PHONE if n % 3 == 0 else OTHER, n) for n in range(12)]
    records.append(_record("globex", PHONE, 99))  # another tenant's customer, same number
    _spool(worker, records)
    found = search_local(tmp_path, "acme", PHONE)
    assert found
    assert {f.store for f in found} == {"spool"}
    assert {f.action for f in found} == {"held"}
    assert sum(f.records for f in found) == 4  # n = 0, 3, 6, 9
    assert all("spool drain" in (f.why or "") for f in found)
    assert all(Path(f.path).parent == worker for f in found)
    # Nothing was changed: the spool still holds every record.
    assert search_local(tmp_path, "acme", PHONE) == found
    assert search_local(tmp_path, "acme", "5511987654320") == []


def test_a_spool_locked_by_a_running_ingress_is_reported_as_in_use(tmp_path: Path) -> None:
    _spool(tmp_path, [_record("acme", PHONE, 1)])
    fd = lock(tmp_path)  # what a running ingress holds
    try:
        found = search_local(tmp_path, "acme", PHONE)
    finally:
        os.close(fd)
    assert [(f.action, f.why, f.records) for f in found] == [("held", IN_USE, 1)]


def test_a_longer_number_holding_the_phone_is_not_the_customer(tmp_path: Path) -> None:
    _spool(tmp_path, [_record("acme", "99" + PHONE, 1), _record("acme", PHONE + "7", 2)])
    assert search_local(tmp_path, "acme", PHONE) == []


def test_quarantined_records_of_the_customer_are_deleted_with_their_description(
    tmp_path: Path,
) -> None:
    worker = tmp_path / "worker-1"
    worker.mkdir()
    mine = _quarantine(worker, _record("acme", PHONE, 1))
    theirs = _quarantine(worker, _record("globex", PHONE, 2))
    other = _quarantine(tmp_path, _record("acme", OTHER, 3))
    found = search_local(tmp_path, "acme", PHONE)
    assert [(f.store, f.path, f.action) for f in found] == [("quarantine", str(mine), "deleted")]
    assert not mine.exists()
    assert not mine.with_suffix(".json").exists()
    assert theirs.exists()
    assert other.exists()
    assert other.with_suffix(".json").exists()
    assert search_local(tmp_path, "acme", PHONE) == []  # a second forget finds nothing


def test_the_receipt_counts_per_store_and_dates_each_topic(tmp_path: Path) -> None:
    _spool(tmp_path, [_record("acme", PHONE, 1)])
    _quarantine(tmp_path, _record("acme", PHONE, 2))
    _quarantine(tmp_path, _record("acme", PHONE, 3))
    erasure = request(Pseudonyms({"acme": ("k",)}), "acme", PHONE, "asked", now_ms=0)
    files = search_local(tmp_path, "acme", PHONE)
    published = Published(topic="plug.privacy.erasure-requested", partition=2, offset=41)
    retention = {"plug.message.received": 7 * DAY_MS, "plug.raw": 30 * DAY_MS, "plug.x": -1}
    done = receipt(erasure, "acme", published, files, retention)
    assert done.subject == erasure.subject
    assert done.stores["spool"].held == 1
    assert done.stores["quarantine"].deleted == 2
    assert done.stores["quarantine"].held == 0
    until = {held.store: held.until for held in done.still_held}
    assert until["kafka:plug.message.received"] == "1970-01-08"
    assert until["kafka:plug.raw"] == "1970-01-31"
    assert until["kafka:plug.x"] is None  # kept without limit: no date to promise
    assert until["warehouse"] is None
    lines = list(text(done))
    encoded = msgspec.json.encode(done).decode()
    for shown in ("\n".join(lines), encoded):
        assert PHONE not in shown
        assert erasure.subject in shown
        assert "plug_erasure" in shown
        assert "offset 41" in shown or '"offset":41' in shown


@pytest.mark.parametrize("phone", ["+55 (11) 98765-4321", "55 11 98765 4321"])
def test_the_search_uses_the_normalised_phone(tmp_path: Path, phone: str) -> None:
    _quarantine(tmp_path, _record("acme", PHONE, 1))
    erasure = request(Pseudonyms({"acme": ("k",)}), "acme", phone)
    assert [f.action for f in search_local(tmp_path, "acme", erasure.phone)] == ["deleted"]
