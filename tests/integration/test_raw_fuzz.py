"""A raw-socket fuzz of malformed HTTP against the real ingress on the real broker.

Methods, paths, tokens, content types, bodies and framing (bad chunking, lying
Content-Length, both framings at once, obsolete folding, NULs, invalid UTF-8, deep
nesting...) combined from a fixed seed: no answer may be a 5xx other than 503, and the
process must be alive afterwards with its peak RSS under 400 MB.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from pathlib import Path

from pipeline.webhooks import Webhook, all_topics
from tests.support import kafka
from tests.support.ingress import start_ingress, stop_ingress
from tests.support.payloads import TOKENS, fixture_bytes
from tests.support.slow import peak_rss_mb, raw_request

REQUESTS = 1500
TOKEN = TOKENS["acme"]

METHODS = [
    b"POST",
    b"GET",
    b"PUT",
    b"DELETE",
    b"PATCH",
    b"OPTIONS",
    b"HEAD",
    b"TRACE",
    b"CONNECT",
    b"post",
    b"PO ST",
    b"G\x00T",
    b"",
    b"X" * 200,
    b"PRI",
]
PATHS = [
    *(f"/webhooks/{w.value}".encode() for w in Webhook),
    b"/webhooks/unknown",
    b"/",
    b"/healthz",
    b"/readyz",
    b"/metrics",
    b"/openapi.json",
    b"/webhooks/receive-message/../../etc/passwd",
    b"//",
    b"/%00",
    b"/%zz",
    b"*",
    b"http://evil.example/webhooks/receive-message",
    b"/" + b"a" * 9000,
    b"/\xff\xfe",
    b"/webhooks/%72eceive-message",
    b"/webhooks/receive-message/",
]
TOKEN_PARTS = [
    b"?token=" + TOKEN.encode(),
    b"?token=wrong",
    b"?token=",
    b"",
    b"?token=" + TOKEN.encode() + b"&token=" + TOKEN.encode(),
    b"?token=%ff%fe",
    b"?token=" + TOKEN.encode() + b"&x=" + b"q" * 3000,
    b"?token=" + TOKEN.encode() + b"#frag",
]
CONTENT_TYPES = [
    b"application/json",
    b"text/plain",
    None,
    b"application/json; charset=latin1",
    b"application/vnd.plug+json",
    b"multipart/form-data; boundary=",
    b"\x00",
]
BODIES = [
    fixture_bytes("receive-message/text.json"),
    fixture_bytes("receive-message/text.json")[:40],
    b'{"phone": "\xff\xfe"}',
    b"[" * 100_000,
    b'{"momment": 1' + b"0" * 400 + b"}",
    b'{"momment": NaN}',
    b"",
    b"\x00" * 64,
    b'{"attendance": {"customer": {"phone": "1"}}, "chat": {"a": {}, "a": {}}}',
    b"null",
]


def _framing(rng: random.Random, body: bytes) -> tuple[list[bytes], bytes]:
    """Framing headers and the bytes actually sent after the blank line."""
    kind = rng.randrange(9)
    if kind == 0:
        return [b"Content-Length: %d" % len(body)], body
    if kind == 1:  # promises more than it sends: held until the body bound
        return [b"Content-Length: %d" % (len(body) + 1000)], body
    if kind == 2:  # promises less: the rest is read as the next request
        return [b"Content-Length: %d" % max(0, len(body) // 2)], body
    if kind == 3:
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        return [b"Transfer-Encoding: chunked"], chunked
    if kind == 4:
        size = rng.choice([b"zz", b"-1", b"ffffffffffffffffff", b"1;ext=" + b"e" * 9000, b""])
        return [b"Transfer-Encoding: chunked"], size + b"\r\n" + body + b"\r\n"
    if kind == 5:
        return [b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"], body
    if kind == 6:
        return [b"Content-Length: 5", b"Content-Length: %d" % len(body)], body
    if kind == 7:
        return [
            b"Transfer-Encoding: gzip, chunked",
            b"Content-Encoding: gzip",
        ], b"5\r\n\x1f\x8b\x08\x00\x00\r\n0\r\n\r\n"
    return [b"Content-Length: 1000000000000"], body[:10]


def _request(rng: random.Random) -> bytes:
    method = rng.choice(METHODS)
    target = rng.choice(PATHS) + rng.choice(TOKEN_PARTS)
    version = rng.choice([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b""])
    headers = [b"Host: ingress"]
    ctype = rng.choice(CONTENT_TYPES)
    if ctype is not None:
        headers.append(b"Content-Type: " + ctype)
    body = rng.choice(BODIES)
    framing, sent = _framing(rng, body)
    headers += framing
    extra = rng.randrange(8)
    if extra == 0:
        headers.append(b"X-Folded: one\r\n  two")  # obsolete line folding
    elif extra == 1:
        headers.append(b"No colon here")
    elif extra == 2:
        headers.append(b"X-Nul: a\x00b")
    elif extra == 3:
        headers.append(b"Authorization: Bearer " + TOKEN.encode())
    elif extra == 4:
        headers.append(b"X-Utf8: \xc3\x28")
    return (
        method
        + b" "
        + target
        + b" "
        + version
        + b"\r\n"
        + b"\r\n".join(headers)
        + b"\r\n\r\n"
        + sent
    )


async def _send_all(port: int, requests: list[bytes]) -> Counter[int | None]:
    gate = asyncio.Semaphore(100)

    async def one(data: bytes) -> int | None:
        async with gate:
            return await raw_request(port, data, shut_write=False, wait_s=10)

    return Counter(await asyncio.gather(*(one(r) for r in requests)))


def test_malformed_http_gets_no_5xx_but_503(broker: str, tmp_path: Path) -> None:
    prefix = f"raw{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    ingress = start_ingress(
        tmp_path, prefix, PLUG_PIPELINE_HEADER_TIMEOUT_S="2", PLUG_PIPELINE_BODY_TIMEOUT_S="2"
    )
    try:
        rng = random.Random(14)
        requests = [_request(rng) for _ in range(REQUESTS)]
        statuses = asyncio.run(_send_all(int(ingress.url.rsplit(":", 1)[1]), requests))
        alive = ingress.process.poll() is None
        healthy = ingress.status("/healthz")
        rss = peak_rss_mb(ingress.process.pid)
    finally:
        stop_ingress(ingress)
    server_errors = {s: n for s, n in statuses.items() if s is not None and s >= 500 and s != 503}
    print(f"raw fuzz: {REQUESTS} requests, statuses {dict(statuses)}, peak RSS {rss:.0f} MB")
    assert server_errors == {}
    assert alive
    assert healthy == 200
    assert rss < 400
    # the mix did reach the handlers, not only the parser
    assert statuses[200] + statuses[400] + statuses[401] + statuses[415] > 0
    assert statuses[400] > 0
