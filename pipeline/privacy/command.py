"""``plug-pipeline forget``: erase one customer of one tenant, and say what is still held.

In order:

1. The erasure request (``privacy.erasure_requested``) is published with acks=all on its
   compacted topic, keyed ``tenant:subject`` (the pseudonym, never the phone), and the
   command waits for Kafka's acknowledgement: from then on every consumer is told.
2. The ingress's local files are searched for the customer's phone (its digits, bounded
   by non-digits) in that tenant's records: the spool (``--spool-dir`` and its
   ``worker-*`` subdirectories) and each spool's quarantine folder.

   - A quarantined record is never read again by the ingress: its ``.body`` and ``.json``
     are deleted.
   - A spool segment is not rewritten. One locked by a running ingress cannot be: the
     ingress appends to it and drains it. One no ingress holds is left as it is too,
     because rewriting it would either drop the customer's records (and with them the
     counts the KPI views keep) or re-encode Plug's raw bodies by hand; it is reported,
     with the way out: ``plug-pipeline spool drain`` puts its records on Kafka, where
     the loader erases them, and a second ``forget`` (which changes nothing already
     erased) covers them if they arrive after the first request.
3. A receipt: the published record, the files deleted and held per store, and until
   when each topic that may hold the customer's records keeps them (the broker's
   ``retention.ms``, or the plan's when the broker does not say).

The phone is never printed or logged: the receipt names the customer by ``subject``.
Exit 0 once the request is on Kafka, 1 when it could not be published, 2 for a bad
``--phone`` or a tenant without a pseudonym key.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from pipeline import config as configuration
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.events.models import Envelope, ErasureRequested
from pipeline.kafka_client import producer_settings
from pipeline.ops.plan import DAY_MS, RETENTION, plan
from pipeline.ops.topics import Cluster, TopicsFailed
from pipeline.privacy.erasure import request
from pipeline.privacy.subject import Pseudonyms
from pipeline.route import event_headers, event_topic, key
from pipeline.sink.ensure import ensure_topics
from pipeline.sink.spooled import lock
from pipeline.spool import segment
from pipeline.spool.entry import ENTRY
from pipeline.spool.quarantine import FOLDER
from pipeline.webhooks import EventType

EXIT_OK, EXIT_FAILED = 0, 1
_SETTINGS = ("bootstrap_servers", "topic_prefix", "spool_dir")
_ENCODER = msgspec.json.Encoder()

IN_USE = (
    "in use by a running ingress; its records reach Kafka, where the loader applies the erasure"
)
NOT_DRAINED = (
    "not drained: run `plug-pipeline spool drain --dir {dir}`, then forget again; "
    "its records then reach Kafka, where the loader applies the erasure"
)
UNKNOWN_TENANT = "its tenant cannot be read: check it and delete it by hand"
WAREHOUSE = "applied by the loader when it reads the request; see plug_erasure"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "forget",
        help="erase one customer of one tenant (LGPD art. 18)",
        description="Publish an erasure request for one customer, delete the ingress's "
        "local copies that can be, and print a receipt of what is still held and until when.",
    )
    p.add_argument("--tenant", required=True, help="the tenant (contact centre)")
    p.add_argument("--phone", required=True, help="the customer's phone, e.g. +55 11 98765-4321")
    p.add_argument("--reason", help="why, kept with the request (no personal data)")
    p.add_argument(
        "--suppress",
        action="store_true",
        help="also anonymise this customer's future events at load time",
    )
    p.add_argument("--json", action="store_true", help="the receipt as one JSON object")
    p.add_argument(
        "--timeout-s",
        type=float,
        default=30.0,
        help="give up publishing after this long (default 30)",
    )
    configuration.add_flags(p, *_SETTINGS)
    p.set_defaults(func=run)


# -- the receipt --------------------------------------------------------------------------


class Published(msgspec.Struct, frozen=True):
    topic: str
    partition: int
    offset: int


class FileFound(msgspec.Struct, frozen=True):
    """One file that held the customer: what was done with it, and why if nothing."""

    store: str  # spool | quarantine
    path: str
    records: int  # of the customer's records in it
    action: str  # deleted | held
    why: str | None = None


class StoreCounts(msgspec.Struct):
    scrubbed: int = 0
    deleted: int = 0
    held: int = 0


class StillHeld(msgspec.Struct, frozen=True):
    """A store that may still hold the customer, and until when (an ISO date, or None)."""

    store: str
    until: str | None
    note: str


class Receipt(msgspec.Struct, frozen=True):
    request_id: str
    tenant: str
    subject: str
    requested_at: str
    suppress: bool
    published: Published
    files: list[FileFound]
    stores: dict[str, StoreCounts]
    still_held: list[StillHeld]


def receipt(
    erasure: ErasureRequested,
    tenant: str,
    published: Published,
    files: list[FileFound],
    retention: dict[str, int],
) -> Receipt:
    """``retention``: each topic that may hold the customer, and its retention.ms."""
    stores = {"spool": StoreCounts(), "quarantine": StoreCounts()}
    for found in files:
        counts = stores[found.store]
        if found.action == "deleted":
            counts.deleted += 1
        else:
            counts.held += 1
    return Receipt(
        request_id=erasure.request_id,
        tenant=tenant,
        subject=erasure.subject,
        requested_at=_iso(erasure.requested_at, "seconds"),
        suppress=erasure.suppress,
        published=published,
        files=files,
        stores=stores,
        still_held=[
            *(_topic_held(t, ms, erasure.requested_at) for t, ms in retention.items()),
            StillHeld(store="warehouse", until=None, note=WAREHOUSE),
        ],
    )


def _topic_held(topic: str, retention_ms: int, now_ms: int) -> StillHeld:
    if retention_ms < 0:
        return StillHeld(
            store=f"kafka:{topic}",
            until=None,
            note="retention.ms is -1: Kafka keeps its records without limit; lower it",
        )
    days = retention_ms / DAY_MS
    return StillHeld(
        store=f"kafka:{topic}",
        until=_iso(now_ms + retention_ms, "date"),
        note=f"records written until now are deleted by then (retention {days:g} days)",
    )


def _iso(ms: int, part: str) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.date().isoformat() if part == "date" else moment.isoformat(timespec="seconds")


def text(r: Receipt) -> Iterator[str]:
    """The receipt for a person: the customer named by subject only."""
    yield f"erasure request {r.request_id}: tenant {r.tenant}, subject {r.subject}"
    p = r.published
    yield f"published: {p.topic} partition {p.partition} offset {p.offset} at {r.requested_at}"
    if r.suppress:
        yield "suppressed: the customer's future events are anonymised when loaded"
    for store, counts in r.stores.items():
        yield (
            f"{store}: {counts.scrubbed} files scrubbed, {counts.deleted} deleted, "
            f"{counts.held} held"
        )
        for f in r.files:
            if f.store == store:
                why = f": {f.why}" if f.why else ""
                yield f"  {f.action} {f.path} ({f.records} records){why}"
    yield "still held:"
    for held in r.still_held:
        until = f" until {held.until}" if held.until else ""
        yield f"  {held.store}{until}: {held.note}"


# -- the local files ----------------------------------------------------------------------


def phone_pattern(phone: str) -> re.Pattern[bytes]:
    """The phone's digits as bytes, not inside a longer number."""
    return re.compile(rb"(?<!\d)" + re.escape(phone.encode()) + rb"(?!\d)")


def search_local(root: Path, tenant: str, phone: str) -> list[FileFound]:
    """Delete the tenant's quarantined records holding ``phone``; report spool files that do.

    ``root`` and its ``worker-*`` subdirectories, as the ingress lays them out.
    """
    if not root.is_dir():
        return []
    pattern = phone_pattern(phone)
    found: list[FileFound] = []
    for directory in [root, *sorted(root.glob("worker-*"))]:
        found += _search_spool(directory, tenant, pattern)
        found += _search_quarantine(directory / FOLDER, tenant, pattern)
    return found


def _search_spool(directory: Path, tenant: str, pattern: re.Pattern[bytes]) -> list[FileFound]:
    holding = [
        (path, n)
        for path in sorted(directory.glob("*" + segment.SUFFIX))
        if (n := _records_holding(path, tenant, pattern))
    ]
    if not holding:
        return []
    try:
        fd = lock(directory)
    except ConfigError:
        why = IN_USE
    else:
        os.close(fd)  # only asked: nothing here is changed
        why = NOT_DRAINED.format(dir=directory)
    return [FileFound("spool", str(path), n, "held", why) for path, n in holding]


def _records_holding(path: Path, tenant: str, pattern: re.Pattern[bytes]) -> int:
    """How many of the tenant's records in one segment hold the phone."""
    try:
        buf = path.read_bytes()
    except FileNotFoundError:  # drained and deleted while we looked
        return 0
    if not pattern.search(buf):
        return 0
    count = 0
    for start, end in segment.scan(buf, complete=True).frames:
        payload = buf[start + segment.HEADER.size : end]
        if pattern.search(payload) and _spooled_tenant(payload) in {tenant, None}:
            count += 1
    return count


def _spooled_tenant(payload: bytes) -> str | None:
    try:
        record = ENTRY.decode(payload).record
    except msgspec.DecodeError:
        return None
    return next((v.decode(errors="replace") for k, v in record.headers if k == "tenant"), None)


def _search_quarantine(folder: Path, tenant: str, pattern: re.Pattern[bytes]) -> list[FileFound]:
    if not folder.is_dir():
        return []
    found = []
    for body in sorted(folder.glob("*.body")):
        about = body.with_suffix(".json")
        about_bytes = _read(about)
        if not (pattern.search(_read(body)) or pattern.search(about_bytes)):
            continue
        owner = _quarantined_tenant(about_bytes)
        if owner is not None and owner != tenant:
            continue
        if owner is None:
            found.append(FileFound("quarantine", str(body), 1, "held", UNKNOWN_TENANT))
            continue
        for path in (body, about):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        found.append(FileFound("quarantine", str(body), 1, "deleted"))
    if found:
        segment.fsync_dir(folder)  # the deletions survive a crash
    return found


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _quarantined_tenant(about: bytes) -> str | None:
    try:
        tenant = orjson.loads(about)["headers"]["tenant"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return tenant if isinstance(tenant, str) else None


# -- Kafka ----------------------------------------------------------------------------------


def envelope(tenant: str, erasure: ErasureRequested) -> Envelope[ErasureRequested]:
    return Envelope(
        event_id=erasure.request_id,
        event_type=EventType.ERASURE_REQUESTED.value,
        tenant=tenant,
        received_at=erasure.requested_at,
        data=erasure,
    )


async def publish(config: Config, tenant: str, erasure: ErasureRequested) -> Published:
    """Publish the request with acks=all and return where Kafka put it."""
    await ensure_topics(config)  # a missing topic is created compacted, from the plan
    producer = AIOKafkaProducer(**producer_settings(config))
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            event_topic(config.topic_prefix, EventType.ERASURE_REQUESTED),
            _ENCODER.encode(envelope(tenant, erasure)),
            key=key(tenant, erasure.subject),
            headers=event_headers(
                EventType.ERASURE_REQUESTED, erasure.request_id, tenant, webhook=None
            ),
        )
    finally:
        await producer.stop()
    return Published(topic=sent.topic, partition=sent.partition, offset=sent.offset)


async def retention(config: Config) -> dict[str, int]:
    """Each topic's retention.ms as the broker has it; the plan's where it does not say.

    Every planned topic may hold the customer: the event topics, raw bodies, dead
    letters, and the erasure requests themselves (they carry the phone).
    """
    planned = {t.name: int(t.configs[RETENTION]) for t in plan(config, brokers=1)}
    try:
        async with Cluster(config) as cluster:
            states = await cluster.topics(list(planned))
    except (KafkaError, TopicsFailed):
        states = {}
    found = {}
    for name, ms in planned.items():
        state = states.get(name)
        value = state.configs.get(RETENTION) if state is not None else None
        found[name] = int(value) if value and value.lstrip("-").isdigit() else ms
    return found


# -- the command ----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    config = configuration.load(None, **configuration.flag_values(args, *_SETTINGS))
    pseudonyms = Pseudonyms(config.privacy_keys)
    if args.tenant not in pseudonyms:
        raise ConfigError(
            f"no pseudonym key for tenant {args.tenant!r}: set PLUG_PIPELINE_PRIVACY_KEYS "
            "(or PLUG_PIPELINE_PRIVACY_KEYS_FILE) to tenant=secret"
        )
    erasure = request(pseudonyms, args.tenant, args.phone, args.reason, args.suppress)
    try:
        published = asyncio.run(_publish_bounded(config, args.tenant, erasure, args.timeout_s))
    except (KafkaError, TimeoutError) as exc:
        print(
            f"plug-pipeline forget: the request was not published to Kafka at "
            f"{config.bootstrap_servers}: {type(exc).__name__} {exc}; nothing was changed",
            file=sys.stderr,
        )
        return EXIT_FAILED
    root = Path(config.spool_dir) if config.spool_dir else None
    files = search_local(root, args.tenant, erasure.phone) if root is not None else []
    done = receipt(erasure, args.tenant, published, files, asyncio.run(retention(config)))
    if args.json:
        print(_ENCODER.encode(done).decode())
    else:
        print("\n".join(text(done)))
    return EXIT_OK


async def _publish_bounded(
    config: Config, tenant: str, erasure: ErasureRequested, timeout_s: float
) -> Published:
    return await asyncio.wait_for(publish(config, tenant, erasure), timeout_s)
