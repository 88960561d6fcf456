"""Slow, idle and oversized clients against the real ingress on the real broker.

The bounds are short here (headers 2 s, body 3 s, idle 3 s) so the suite stays fast;
the defaults are 10 s, 30 s and 75 s. Tricklers send one byte every 2 s, as an
attacker would, and wait on the server between bytes so a cut-off is seen at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from pipeline.webhooks import all_topics
from tests.support import kafka
from tests.support.ingress import Ingress, start_ingress, stop_ingress
from tests.support.payloads import TOKENS, fixture_bytes
from tests.support.slow import Cut, metric, raw_request, trickle

HEADER_S, BODY_S, IDLE_S = 2.0, 3.0, 3.0
# what a loaded 2-core machine may add to a bound before the client sees the close
SLACK_S = 2.0
INTERVAL_S = 2.0
TEXT = fixture_bytes("receive-message/text.json")
TOKEN = TOKENS["acme"]


def _bounded(tmp: Path, **env: str) -> Ingress:
    prefix = f"slow{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    bounds = {
        "PLUG_PIPELINE_HEADER_TIMEOUT_S": str(HEADER_S),
        "PLUG_PIPELINE_BODY_TIMEOUT_S": str(BODY_S),
        "PLUG_PIPELINE_KEEPALIVE_TIMEOUT_S": str(IDLE_S),
    }
    return start_ingress(tmp, prefix, extra_env={**bounds, **env})


@pytest.fixture(scope="module")
def bounded(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    running = _bounded(tmp_path_factory.mktemp("slow"))
    yield running
    stop_ingress(running)


def port_of(ingress: Ingress) -> int:
    return int(ingress.url.rsplit(":", 1)[1])


def request_head(content_length: int | None = None) -> bytes:
    lines = [
        f"POST /webhooks/receive-message?token={TOKEN} HTTP/1.1",
        "Host: ingress",
        "Content-Type: application/json",
        "User-Agent: a-slow-client-that-sends-one-byte-every-two-seconds",
    ]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _real_webhook(ingress: Ingress) -> dict[str, str]:
    """A normal webhook; it must be answered within a second."""
    timeout = aiohttp.ClientTimeout(total=1.0)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            f"{ingress.url}/webhooks/receive-message?token={TOKEN}",
            data=TEXT,
            headers={"Content-Type": "application/json"},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        answer: dict[str, str] = await resp.json()
        return answer


async def test_trickling_clients_are_cut_off_while_a_real_webhook_gets_through(
    bounded: Ingress,
) -> None:
    port = port_of(bounded)
    give_up = BODY_S + 3 * SLACK_S
    heads = [
        asyncio.create_task(trickle(port, b"", request_head(), INTERVAL_S, give_up))
        for _ in range(200)
    ]
    bodies = [
        asyncio.create_task(
            trickle(port, request_head(1000), b"{" + b" " * 999, INTERVAL_S, give_up)
        )
        for _ in range(200)
    ]
    loop = asyncio.get_running_loop()

    def all_connected() -> bool:
        return metric(bounded.url, "plug_connections_open") >= 400

    await loop.run_in_executor(None, _poll_sync, all_connected)
    # every slow client is connected and waiting: a real webhook still gets through
    answer = await _real_webhook(bounded)
    assert answer["status"] in {"published", "spooled"}

    head_cuts: list[Cut] = await asyncio.gather(*heads)
    body_cuts: list[Cut] = await asyncio.gather(*bodies)

    assert all(c.cut_off for c in head_cuts + body_cuts), "a slow client kept its connection"
    assert {c.status for c in head_cuts} == {408}
    assert {c.status for c in body_cuts} == {408}
    assert max(c.after_s for c in head_cuts) < HEADER_S + SLACK_S
    assert max(c.after_s for c in body_cuts) < BODY_S + SLACK_S
    # none got far: a byte every 2 s for at most the bound
    assert max(c.sent for c in head_cuts + body_cuts) <= 3
    assert metric(bounded.url, 'plug_webhooks_rejected_total{reason="request_timeout"}') >= 400


def _poll_sync(check: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the slow clients to connect")
        time.sleep(0.05)  # polling the condition itself, with a deadline


async def test_an_idle_keep_alive_connection_is_closed(bounded: Ingress) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(bounded))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: ingress\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b'"ok"}'), timeout=5)
    assert answer.startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    # then nothing: the server closes the idle connection (EOF), it does not wait forever
    rest = await asyncio.wait_for(reader.read(), timeout=IDLE_S + SLACK_S + 2)
    writer.close()
    assert rest == b""
    assert time.monotonic() - started < IDLE_S + SLACK_S


async def test_a_connection_that_never_asks_is_closed_without_an_answer(
    bounded: Ingress,
) -> None:
    """A 408 nobody asked for could be read by a client's pool as its next webhook's answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(bounded))
    started = time.monotonic()
    rest = await asyncio.wait_for(reader.read(), timeout=HEADER_S + SLACK_S + 2)
    writer.close()
    assert rest == b""  # closed, and not a byte of an answer
    assert time.monotonic() - started < HEADER_S + SLACK_S


@pytest.mark.parametrize(
    ("name", "data", "statuses"),
    [
        (
            "1.6 MB header block",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 4000) for i in range(400))
            + b"\r\n",
            {400, 431},
        ),
        ("100 KB request line", b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n", {400, 414, 431}),
        (
            "200 header fields",
            b"GET /healthz HTTP/1.1\r\n"
            + b"".join(b"X-%d: v\r\n" % i for i in range(200))
            + b"\r\n",
            {400, 431},
        ),
    ],
)
async def test_oversized_requests_get_4xx(
    bounded: Ingress, name: str, data: bytes, statuses: set[int]
) -> None:
    status = await raw_request(port_of(bounded), data, shut_write=False, wait_s=10)
    assert status in statuses, name
    assert bounded.process.poll() is None


async def test_a_trillion_byte_body_is_refused_at_once(bounded: Ingress) -> None:
    """413 before any byte of the body is sent (and before any in-flight budget is looked at)."""
    head = request_head(10**12)
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(bounded))
    writer.write(head)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), timeout=HEADER_S)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"too_large"' in answer


async def test_query_string_and_token_limits(bounded: Ingress) -> None:
    async with aiohttp.ClientSession() as session:
        long_query = f"{bounded.url}/webhooks/receive-message?token={TOKEN}&pad={'p' * 3000}"
        async with session.post(
            long_query, data=TEXT, headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 414
        twice = f"{bounded.url}/webhooks/receive-message?token={TOKEN}&token={TOKENS['globex']}"
        async with session.post(
            twice, data=TEXT, headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 400
            assert (await r.json())["error"] == "bad_request"
        both = f"{bounded.url}/webhooks/receive-message?token={TOKEN}"
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        async with session.post(both, data=TEXT, headers=headers) as r:
            assert r.status == 400


def _shed_at_least(url: str, count: int) -> bool:
    """Whether ``count`` connections were shed. The poll is a client too: while tricklers
    still connect, its own connection may be the longest waiting, and be shed (no answer)."""
    try:
        return metric(url, 'plug_connections_closed_total{reason="shed"}') >= count
    except OSError:  # closed without an answer (RemoteDisconnected), reset, refused
        return False


async def test_past_the_connection_bound_the_longest_waiting_is_shed(
    broker: str, tmp_path: Path
) -> None:
    """With room for 50, 100 tricklers cannot keep a real webhook out: the oldest go first."""
    ingress = _bounded(
        tmp_path, PLUG_PIPELINE_MAX_CONNECTIONS="50", PLUG_PIPELINE_HEADER_TIMEOUT_S="30"
    )
    try:
        port = port_of(ingress)
        give_up = 3 * SLACK_S
        slow = [
            asyncio.create_task(trickle(port, b"", request_head(), INTERVAL_S, give_up))
            for _ in range(100)
        ]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _poll_sync, lambda: _shed_at_least(ingress.url, 50))
        answer = await _real_webhook(ingress)
        assert answer["status"] in {"published", "spooled"}
        cuts = await asyncio.gather(*slow)
        # shed: a 503 if its request had begun, else closed without an answer
        shed_ones = [c for c in cuts if c.cut_off]
        assert len(shed_ones) >= 50
        assert {c.status for c in shed_ones} <= {503, None}
        assert ingress.process.poll() is None
    finally:
        stop_ingress(ingress)
