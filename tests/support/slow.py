"""Raw-socket clients for the edge tests: tricklers, and one-shot raw requests."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from dataclasses import dataclass

from pipeline.runtime.metrics import samples

_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")


@dataclass
class Cut:
    """How a trickling client ended: the answer it got (if any) and after how long."""

    status: int | None  # None: closed without an answer
    after_s: float
    sent: int
    cut_off: bool  # False: the client gave up first, the server never closed


def status_of(answer: bytes) -> int | None:
    found = _STATUS.match(answer)
    return int(found.group(1)) if found else None


async def trickle(
    port: int, head: bytes, slow_part: bytes, interval_s: float, give_up_s: float
) -> Cut:
    """Send ``head`` at once, then ``slow_part`` one byte every ``interval_s``.

    Between bytes the client waits on the server (an answer or a close), so it notices a
    cut-off the moment it happens; after ``give_up_s`` it stops and reports it was not cut.
    """
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    answer = b""
    try:
        if head:
            writer.write(head)
            await writer.drain()
        for index in range(len(slow_part)):
            if time.monotonic() - started > give_up_s:
                return Cut(None, time.monotonic() - started, sent, cut_off=False)
            try:
                writer.write(slow_part[index : index + 1])
                await writer.drain()
                sent += 1
            except ConnectionError:
                break
            try:
                answer = await asyncio.wait_for(reader.read(4096), timeout=interval_s)
                break  # an answer, or b"" when the server closed
            except TimeoutError:
                continue  # the server is still waiting: send the next byte
            except ConnectionError:
                break
        else:
            # all sent: wait for the server's verdict
            answer = await asyncio.wait_for(reader.read(4096), timeout=give_up_s)
    finally:
        writer.close()
    return Cut(status_of(answer), time.monotonic() - started, sent, cut_off=True)


async def raw_request(port: int, data: bytes, shut_write: bool, wait_s: float) -> int | None:
    """One raw request on its own connection; the answer's status, or None if closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if shut_write and writer.can_write_eof():
            writer.write_eof()
        answer = await asyncio.wait_for(reader.read(256), timeout=wait_s)
    except (ConnectionError, TimeoutError):
        return None
    finally:
        writer.close()
    return status_of(answer)


def metric(url: str, series: str) -> float:
    """One series' value from the ingress's /metrics, named with its labels; 0 when absent."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return samples(text).get(series, 0.0)


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")
