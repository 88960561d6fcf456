"""The 200 a webhook gets, serialised whole and written in one call.

aiohttp's ``web.Response`` builds a header multidict, then ``prepare`` fills in and
serialises the headers and ``write_eof`` writes them with the body: about 7 us of the
~90 us a webhook costs, for an answer that is always the same but for its body. An
``Accepted`` is the status line, four headers and the body, as bytes, which
``GuardedProtocol.finish_response`` writes to the transport in one call when the exchange
is a plain HTTP/1.1 keep-alive one; any other (HTTP/1.0, a client asking to close, a
declined upgrade) gets it as an ordinary ``web.Response`` through aiohttp's own path.

It is a ``StreamResponse`` only for the types and the two attributes read of every answer
(``status``, ``keep_alive``); ``StreamResponse.__init__`` (a header multidict, cookies...)
is not run, so nothing but ``GuardedProtocol`` may prepare it.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from pipeline.http.responses import json_answer

_HEAD = (
    f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nServer: {SERVER_SOFTWARE}\r\nDate: "
).encode()
_date: tuple[int, bytes] = (0, b"")


def _date_line(now: float) -> bytes:
    """``Date:``'s value and the lines after it up to the body's length, cached per second."""
    global _date
    second = int(now)
    if _date[0] != second:
        _date = (second, formatdate(second, usegmt=True).encode() + b"\r\nContent-Length: ")
    return _date[1]


class Accepted(web.StreamResponse):
    def __init__(self, body: bytes) -> None:
        self._status = 200
        self._keep_alive: bool | None = True
        self.body_bytes = body

    def encoded(self) -> bytes:
        """The whole answer: status line, headers, body."""
        body = self.body_bytes
        return b"".join(
            (_HEAD, _date_line(time.time()), str(len(body)).encode(), b"\r\n\r\n", body)
        )

    def as_response(self) -> web.Response:
        """The same answer for aiohttp's own path."""
        return json_answer(self.body_bytes)

    async def prepare(self, request: web.BaseRequest) -> None:
        raise RuntimeError("an Accepted answer is written by GuardedProtocol, not prepared")
