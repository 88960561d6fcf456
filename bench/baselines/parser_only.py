"""The floor under any aiohttp-based ingress: aiohttp's C request parser and nothing else.

A bare protocol (aiohttp's ``BaseProtocol``: the transport and flow control the parser's
payloads call) feeds each read to aiohttp's ``HttpRequestParser`` (the llhttp-based
parser every aiohttp server uses) and, for each complete request, runs a task that reads
its body and writes a fixed 200. No request object, no request loop, no response object:
what is left is the parsing, one task per request and the socket calls.
``bench/handler.py`` measures it beside aiohttp's own servers (``bare-server``,
``bare-app``) and ours (``guarded-stub``, ``ingress``), so the CPU aiohttp's request
machinery adds per request is a figure, not a guess. Not a server to run: no deadlines,
no limits, no error answers.
"""

from __future__ import annotations

import asyncio

from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_parser import HttpRequestParser
from aiohttp.streams import StreamReader

_OK = b'{"status":"ok"}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(_OK)).encode() + b"\r\n\r\n" + _OK
)


class ParserOnly(BaseProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._requests = HttpRequestParser(self, loop, 2**16, max_line_size=8190)
        self._tasks: set[asyncio.Task[None]] = set()

    def data_received(self, data: bytes) -> None:
        messages, _upgraded, _tail = self._requests.feed_data(data)
        for _message, payload in messages:
            task = self._loop.create_task(self._answer(payload))
            self._tasks.add(task)  # held until done: a task only weakly referenced may vanish
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, payload: StreamReader) -> None:
        await payload.read()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(ANSWER)


async def serve(host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: ParserOnly(loop), host, port)
