"""The parser-only baseline of bench/handler.py answers every request of a connection."""

from __future__ import annotations

import asyncio

from bench.baselines.parser_only import ANSWER, serve


def _post(body: bytes) -> bytes:
    head = f"POST /webhooks/x HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def test_each_request_gets_its_answer_even_when_its_body_comes_in_pieces() -> None:
    server = await serve("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        big = _post(b"x" * 200_000)  # more than one read on the server's side
        writer.write(big[:1000])
        await writer.drain()
        writer.write(big[1000:] + _post(b"{}"))
        await writer.drain()
        answers = await asyncio.wait_for(reader.readexactly(2 * len(ANSWER)), 10)
        assert answers == ANSWER * 2
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
