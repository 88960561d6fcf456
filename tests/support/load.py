"""A load client for the fault tests, and the check of what reached Kafka.

Each worker owns one conversation (one phone, so one key) and sends its webhooks
one after another, so within a key the order of sending is the order of
acknowledgement, and Kafka must keep it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

from tests.support import kafka


@dataclass
class Load:
    sent: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    acked: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # key -> [(topic, id)]
    # (sent at, seconds to the answer, answer) of every request answered, monotonic clock
    timings: list[tuple[float, float, str]] = field(default_factory=list)

    @property
    def acked_ids(self) -> set[str]:
        """Built anew on each call: take it once, not in a loop."""
        return {eid for per_key in self.acked.values() for _, eid in per_key}


def _body(tag: str, worker: int, n: int, phone: str) -> tuple[str, str, bytes]:
    """(webhook, topic suffix, body): mostly messages, every third a status of the last one."""
    moment = 1_735_700_000_000 + n
    if n % 3 == 2:
        return "message-status", "message.status", orjson.dumps({
            "type": "MessageStatusCallback", "status": "READ", "phone": phone,
            "ids": [f"{tag}-{worker}-{n - 1}"], "momment": moment, "instanceId": "fault-test",
        })  # fmt: skip
    return "receive-message", "message.received", orjson.dumps({
        "type": "ReceivedCallback", "phone": phone, "messageId": f"{tag}-{worker}-{n}",
        "momment": moment, "fromMe": False, "instanceId": "fault-test",
        "text": {"message": f"fault test {tag} message {n} " + "x" * 600},
    })  # fmt: skip


async def run_load(
    url: Callable[[str], str],
    tag: str,
    tenant: str,
    seconds: float,
    workers: int = 8,
    rate: float = 200.0,
) -> Load:
    """Send for ``seconds`` at about ``rate`` webhooks/s in all, through every failure."""
    load = Load()
    interval = workers / rate
    deadline = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=15)

    async def worker(i: int, session: aiohttp.ClientSession) -> None:
        phone = f"5511{i:04d}{abs(hash(tag)) % 10**5:05d}"
        key = f"{tenant}:{phone}"
        n = 0
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            hook, topic, body = _body(tag, i, n, phone)
            n += 1
            load.sent += 1
            started = time.monotonic()
            try:
                async with session.post(
                    url(hook), data=body, headers={"Content-Type": "application/json"}
                ) as resp:
                    answer = orjson.loads(await resp.read())
                    said = f"{resp.status} {answer.get('status', answer.get('error'))}"
                    load.answers[said] += 1
                    load.timings.append((started, time.monotonic() - started, said))
                    if resp.status == 200:
                        load.acked.setdefault(key, []).append((topic, answer["event_id"]))
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
                load.answers["connection error"] += 1
            # pacing to the rate; not a wait for anything to happen
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(i, session) for i in range(workers)))
    return load


@dataclass
class Verdict:
    sent: int
    acked: int
    found: int
    lost: list[str]
    duplicates: int
    out_of_order: int

    def line(self, name: str) -> str:
        return (
            f"{name}: sent {self.sent} / acked {self.acked} / found {self.found} / "
            f"lost {len(self.lost)} / duplicates {self.duplicates} / "
            f"out of order {self.out_of_order}"
        )


def verify(
    load: Load, prefix: str, bootstrap: str = kafka.BOOTSTRAP, timeout_s: float = 60.0
) -> Verdict:
    """Read every event topic back with librdkafka and compare with what was acked."""
    topics = [f"{prefix}.message.received", f"{prefix}.message.status"]
    acked = load.acked_ids  # once: a set of every id (a soak's hour: 273,052)
    records = kafka.read_all(topics, want=acked, timeout_s=timeout_s, bootstrap=bootstrap)
    counts = Counter(r.event_id for r in records)
    # first position of each id in its partition's log
    position: dict[str, tuple[str, int, int]] = {}
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        position.setdefault(r.event_id, (r.topic, r.partition, r.offset))
    lost = sorted(acked - counts.keys())
    out_of_order = 0
    for per_key in load.acked.values():
        for topic in {t for t, _ in per_key}:
            offsets = [position[eid] for t, eid in per_key if t == topic and eid in position]
            out_of_order += sum(1 for a, b in itertools.pairwise(offsets) if b < a)
    return Verdict(
        sent=load.sent,
        acked=len(acked),
        found=len(acked) - len(lost),
        lost=lost,
        duplicates=sum(c - 1 for eid, c in counts.items() if eid in acked and c > 1),
        out_of_order=out_of_order,
    )
