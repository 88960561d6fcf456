"""No token appears in any log line of any ingress this session ran.

This test provokes the logs most likely to leak a token (wrong and doubled tokens, a
malformed request line carrying a token, dead letters, a bad tokens file on SIGHUP) and
reads every line its ingress wrote. Every other ingress log of the session is read at
the session's end by the root conftest's ``no_secret_in_ingress_logs``, whatever
tests ran and in whatever order.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

from pipeline.webhooks import all_topics
from tests.support import kafka
from tests.support.ingress import INGRESS_LOGS, start_ingress, stop_ingress
from tests.support.payloads import TOKENS
from tests.support.secrets import WRONG, scan
from tests.support.slow import raw_request


def _provocations(token: str) -> list[bytes]:
    target = f"/webhooks/receive-message?token={token}".encode()
    json_head = b"Host: ingress\r\nContent-Type: application/json\r\n"
    empty = b" HTTP/1.1\r\nHost: i\r\nContent-Length: 0\r\n\r\n"
    bearer = b"Authorization: Bearer " + token.encode()
    return [
        b"POST " + target + b" HTTP/1.1\r\n" + json_head + b"Content-Length: 8\r\n\r\nnot json",
        b"POST " + target + b"&token=" + token.encode() + empty,
        b"BR\x00KEN " + target + b" HTTP/1.1\r\n\r\n",
        b"POST " + target + b" HTTP/9.9\r\n\r\n",
        b"POST " + target + b" HTTP/1.1\r\nBad Header: " + token.encode() + b"\x01\r\n\r\n",
        b"POST "
        + target
        + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
        + json_head
        + b"\r\nzz\r\n"
        + token.encode()
        + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: i\r\n" + bearer + b"\r\n\r\n",
        b"POST /webhooks/nope?token=" + token.encode() + empty,
    ]


async def _provoke(port: int) -> None:
    sends = [
        raw_request(port, data, shut_write=False, wait_s=5)
        for token in (TOKENS["acme"], WRONG)
        for data in _provocations(token)
    ]
    answers = await asyncio.gather(*sends)
    assert 400 in answers  # the dead letter's answer, among others


def test_no_log_line_holds_a_token(broker: str, tmp_path: Path) -> None:
    prefix = f"sec{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text(f"acme={TOKENS['acme']}\nglobex={TOKENS['globex']}\n", encoding="utf-8")
    ingress = start_ingress(
        tmp_path,
        prefix,
        PLUG_PIPELINE_TOKENS_FILE=str(tokens_file),
        PLUG_PIPELINE_HEADER_TIMEOUT_S="2",
        PLUG_PIPELINE_BODY_TIMEOUT_S="2",
    )
    try:
        asyncio.run(_provoke(int(ingress.url.rsplit(":", 1)[1])))
        # a reload that fails, whose file holds tokens, then one that works
        tokens_file.write_text(f"acme={TOKENS['acme']},broken {WRONG}\n", encoding="utf-8")
        ingress.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "tokens not reloaded" not in ingress.log.read_text():
            assert time.monotonic() < deadline, "the failed reload was not logged"
            time.sleep(0.05)  # polling the log itself, with a deadline
        assert "dead-lettered" in ingress.log.read_text()
    finally:
        stop_ingress(ingress)

    assert ingress.log in INGRESS_LOGS  # so the session-end check reads it too
    lines, leaks = scan([ingress.log])
    assert lines > 0
    assert leaks == [], f"tokens in logs at {leaks}"
