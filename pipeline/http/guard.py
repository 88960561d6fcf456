"""What one connection may cost: deadlines on each phase of a request, and a bound on them all.

aiohttp has no request-read timeout of its own, so every connection gets a watchdog
driven by the protocol's own reads. A connection is always in one phase:

::

    FRESH  connected, no byte yet       deadline: header_timeout_s  -> closed, no answer
    HEAD   a request's first byte seen   deadline: header_timeout_s  -> 408, closed
                                         (a header block over max_header_bytes -> 431)
    BODY   headers parsed, body pending  deadline: body_timeout_s    -> 408, closed
    BUSY   request complete, answering   none: the handler's own bounds apply
    IDLE   answered, kept alive          deadline: keepalive_timeout_s -> closed
    LINGER refused, closing (see below)  deadline: LINGER_S -> closed

The number of open connections is bounded too. Past ``max_connections`` the connection
that has waited longest in FRESH, HEAD, IDLE, BODY or LINGER is shed to make room, so clients that
trickle can never starve a client that sends its request at once: a new connection always
gets in, and is shed only after every older waiting one.

A connection refused with an error answer (431, 408, 503, a request aiohttp's parser
rejects) while its client may still be sending is not closed at once: closing a socket
with unread bytes makes the kernel send a reset, and a client that is still writing then
gets ECONNRESET instead of the answer. It is half-closed instead (the answer, then FIN)
and what still arrives is read and dropped until the client closes too, for at most
``LINGER_S`` and ``LINGER_BYTES`` (what nginx calls a lingering close).

``GuardedServer`` is an ``aiohttp.web.Server`` (the low-level server) whose protocol is
``GuardedProtocol``; ``GuardedRunner`` runs it for a ``Service`` (the ingress: its
dispatch and the lifecycle of its sink).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

import orjson
from aiohttp import HttpVersion11, web
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler

from pipeline.config import Config
from pipeline.http.accepted import Accepted
from pipeline.runtime.metrics import METRICS

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    FRESH = "fresh"
    HEAD = "head"
    BODY = "body"
    BUSY = "busy"
    IDLE = "idle"
    LINGER = "linger"


# Phases whose connection waits on the client: the ones that may be shed.
_WAITING = frozenset({Phase.FRESH, Phase.HEAD, Phase.BODY, Phase.IDLE, Phase.LINGER})

# How long, and how much, a refused client may go on sending before the reset.
LINGER_S = 2.0
LINGER_BYTES = 16 << 20


class BodyTimeout(TimeoutError):
    """Set on a request's payload when its body is late: the handler answers 408.

    A TimeoutError, so aiohttp's own draining of an unread body ends quietly on it.
    """


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout_s: float
    body_timeout_s: float
    keepalive_timeout_s: float
    max_connections: int
    max_header_bytes: int

    @classmethod
    def of(cls, config: Config) -> Limits:
        return cls(
            config.header_timeout_s,
            config.body_timeout_s,
            config.keepalive_timeout_s,
            config.max_connections,
            config.max_header_bytes,
        )


def handler_args(config: Config) -> dict[str, Any]:
    """What aiohttp's own parser refuses (400): line length and header count."""
    return {
        "max_line_size": config.max_request_line_bytes,
        "max_field_size": config.max_request_line_bytes,
        "max_headers": config.max_headers,
        # our IDLE deadline closes idle connections; aiohttp's is a backstop
        "keepalive_timeout": config.keepalive_timeout_s + 1,
    }


def _raw_answer(status: int, phrase: str, reason: str, detail: str) -> bytes:
    body = orjson.dumps({"error": reason, "detail": detail})
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedProtocol(RequestHandler):
    """aiohttp's protocol with a watchdog on each phase of a request."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._limits = manager.limits
        self._phase = Phase.FRESH
        self._head_bytes = 0
        self._payload: StreamReader = EMPTY_PAYLOAD
        # When the current phase's deadline falls (loop time), None in BUSY; and the one
        # timer that watches it, armed at ``_armed_at`` (see ``_enter``).
        self._due: float | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self._counted = False
        self._linger_after = False  # set for an answer to what aiohttp's parser refused
        self._dropped = 0  # bytes read and dropped while lingering

    @property
    def phase(self) -> Phase:
        return self._phase

    # -- phases -----------------------------------------------------------------------

    def _enter(self, phase: Phase, timeout: float | None, arm: bool = True) -> None:
        """Move to ``phase``, whose deadline is ``timeout`` from now (None: no deadline).

        A request moves through three or four phases; a timer made and cancelled for
        each cost ~2 us a request. Instead one timer per connection stays armed at or
        before the current deadline: a phase change only records when its deadline
        falls, and a timer that fires before it re-arms itself for the rest. A new
        timer is needed only when a deadline is earlier than the armed one.
        ``arm=False`` leaves that to the caller, when the phase may end at once.
        """
        self._phase = phase
        self._due = None if timeout is None else self._loop.time() + timeout
        if arm:
            self._arm()
        self._guard.moved(self)

    def _arm(self) -> None:
        due = self._due
        if due is None:
            return  # an armed timer finds nothing due and stops
        if self._deadline is not None:
            if self._armed_at <= due:
                return
            self._deadline.cancel()
        self._armed_at = due
        self._deadline = self._loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._deadline = None
        due = self._due
        if due is None:
            return
        if self._loop.time() < due:  # the deadline moved on since this timer was armed
            self._armed_at = due
            self._deadline = self._loop.call_at(due, self._on_timer)
            return
        self._due = None
        self._expired()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._enter(Phase.FRESH, self._limits.header_timeout_s)
        self._counted = True
        self._guard.admit(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._due = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._counted:
            self._counted = False
            self._guard.gone(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:  # noqa: C901  (the hot path, kept inline)
        if self._phase is Phase.LINGER:
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self.force_close()
            return
        # b"" is aiohttp resuming its parser after a pause (``resume_reading``), not the
        # client sending: it starts no new phase.
        starting = False  # a new request's first bytes: HEAD, entered below unless complete
        if data:
            if self._phase is Phase.BODY and self._payload.is_eof():
                self._enter(Phase.BUSY, None)
            if self._phase in (Phase.BUSY, Phase.IDLE):
                self._head_bytes = 0
                # Most requests arrive whole in one read and go straight on to BUSY: HEAD's
                # deadline and bookkeeping are done only if the headers are still incomplete.
                self._phase = Phase.HEAD
                starting = True
            elif self._phase is Phase.FRESH:
                self._phase = Phase.HEAD  # the deadline set at connect still runs
            if self._phase is Phase.HEAD:
                self._head_bytes += len(data)
        parsed_before = self._request_count
        super().data_received(data)
        closing = self._force_close or self.transport is None
        parsed = not closing and self._request_count != parsed_before and bool(self._messages)
        if starting and not parsed:
            # armed below, and only if the headers are still incomplete after this read
            self._enter(Phase.HEAD, self._limits.header_timeout_s, arm=False)
        if closing:
            return
        if parsed:
            self._payload = self._messages[-1][1]
            if self._payload.is_eof():
                self._enter(Phase.BUSY, None)
            else:
                self._enter(Phase.BODY, self._limits.body_timeout_s)
        elif self._phase is Phase.HEAD and self._head_bytes > self._limits.max_header_bytes:
            limit = self._limits.max_header_bytes
            self._refuse(
                431,
                "Request Header Fields Too Large",
                "header_too_large",
                f"the header block is over {limit} bytes",
            )
            return
        elif self._phase is Phase.BODY and self._payload.is_eof():
            self._enter(Phase.BUSY, None)
        self._arm()

    def resume_reading(self, resume_parser: bool = True) -> None:
        """aiohttp's, only when reading was paused.

        aiohttp's payload calls it each time a handler reads the body, paused or not, and
        it feeds the parser an empty read through ``data_received``: about 2 us a request
        for nothing. Unpaused, the parser holds no unparsed bytes and the transport reads.
        """
        if self._reading_paused:
            super().resume_reading(resume_parser)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        if type(resp) is Accepted:
            transport = self.transport
            if transport is None or transport.is_closing():
                return resp, True  # the client left: as aiohttp reports it
            if request.version == HttpVersion11 and request.keep_alive and not self._upgraded:
                # aiohttp's finish_response would also release a multipart body's files
                # (a webhook has none) and feed a declined upgrade's tail (excluded above).
                transport.write(resp.encoded())
                self._answered()
                return resp, False
            resp = resp.as_response()
        answered = await super().finish_response(request, resp, start_time)
        if self._linger_after:
            self._linger()
        self._answered()
        return answered

    def _answered(self) -> None:
        if self._phase is Phase.BUSY and not self._force_close:
            self._enter(Phase.IDLE, self._limits.keepalive_timeout_s)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer to what its parser refused, without echoing the request.

        aiohttp's own logs the parser's message with a traceback and sends it back in the
        body; both can quote the request line, and with it a token.
        """
        if status >= 500:
            log.error("error handling a request", exc_info=exc)
        else:
            log.info("refused a malformed request: %d %s", status, type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was sent already; the connection is broken")
        self._linger_after = True
        phrase = HTTPStatus(status).phrase
        reason = phrase.lower().replace(" ", "_")
        METRICS.rejected.labels(reason).inc()
        response = web.Response(
            status=status,
            body=orjson.dumps({"error": reason, "detail": f"{phrase}: not a request we parse"}),
            content_type="application/json",
        )
        response.force_close()
        return response

    # -- deadlines and shedding -------------------------------------------------------

    def _expired(self) -> None:
        phase = self._phase
        if phase is Phase.FRESH:
            # Nothing was asked, so nothing is answered: a 408 sent unasked could be read by a
            # client's pool as the answer to the webhook it writes on this connection next.
            METRICS.connections_closed.labels("idle").inc()
            self.force_close()
        elif phase is Phase.HEAD:
            bound = self._limits.header_timeout_s
            self._refuse(
                408,
                "Request Timeout",
                "request_timeout",
                f"the request's headers did not arrive within {bound:g} s",
            )
        elif phase is Phase.BODY:
            if self._payload.is_eof():
                self._enter(Phase.BUSY, None)
                return
            bound = self._limits.body_timeout_s
            METRICS.rejected.labels("request_timeout").inc()
            # the handler reading the body answers 408; one that is not reading ends quietly
            self._payload.set_exception(BodyTimeout(f"the body did not arrive within {bound:g} s"))
            self.close()
            # a backstop in case nothing reads the payload any more
            self._enter(Phase.BUSY, self._limits.header_timeout_s)
        elif phase is Phase.IDLE:
            METRICS.connections_closed.labels("idle").inc()
            self.force_close()
        else:  # the end of a lingering close, or the BODY backstop
            self.force_close()

    def shed(self) -> None:
        """Make room for a newer connection."""
        METRICS.connections_closed.labels("shed").inc()
        if self._phase is Phase.HEAD and not self._request_in_progress:
            self._refuse(
                503,
                "Service Unavailable",
                "too_many_connections",
                "too many open connections; this one waited longest",
            )
        else:
            self.force_close()

    def _refuse(self, status: int, phrase: str, reason: str, detail: str) -> None:
        """Answer on the raw transport (no request object exists yet) and close."""
        METRICS.rejected.labels(reason).inc()
        if self.transport is not None and not self._request_in_progress:
            self.transport.write(_raw_answer(status, phrase, reason, detail))
            self._linger()
        else:
            self.force_close()

    def _linger(self) -> None:
        """Half-close after an error answer, dropping what the client still sends (see top)."""
        transport = self.transport
        if transport is None or transport.is_closing() or not transport.can_write_eof():
            self.force_close()  # TLS has no half-close: closed as before
            return
        # aiohttp's request loop ends on _force_close without closing the transport: the
        # client's FIN (eof_received), LINGER_BYTES or the LINGER deadline closes it.
        self._force_close = True
        if self._waiter is not None:
            self._waiter.cancel()
        transport.write_eof()
        if not transport.is_reading():  # paused by aiohttp's flow control: dropping needs reads
            transport.resume_reading()
        self._enter(Phase.LINGER, LINGER_S)


class GuardedServer(web.Server):
    """The low-level server, making ``GuardedProtocol`` connections and bounding their number."""

    def __init__(self, *args: Any, limits: Limits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._open = 0
        # insertion order = the order in which connections began waiting on their client
        self._waiting: dict[GuardedProtocol, None] = {}

    def __call__(self) -> GuardedProtocol:
        return GuardedProtocol(self, loop=self._loop, **self._kwargs)

    @property
    def open_connections(self) -> int:
        return self._open

    def admit(self, protocol: GuardedProtocol) -> None:
        self._open += 1
        if self._open <= self.limits.max_connections:
            return
        oldest = next((p for p in self._waiting if p is not protocol), None)
        (oldest or protocol).shed()

    def moved(self, protocol: GuardedProtocol) -> None:
        self._waiting.pop(protocol, None)
        if protocol.phase in _WAITING:
            self._waiting[protocol] = None

    def gone(self, protocol: GuardedProtocol) -> None:
        self._waiting.pop(protocol, None)
        self._open -= 1


class Service(Protocol):
    """What ``GuardedRunner`` serves: a request handler and a lifecycle around it."""

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse: ...

    async def start(self) -> None:
        """Open resources, before the first request."""

    async def shutdown(self) -> None:
        """The listener is closed; in-flight requests are still being answered."""

    async def stop(self) -> None:
        """Close resources, after the last request."""


class GuardedRunner(web.BaseRunner):
    """A runner whose server is a ``GuardedServer`` calling ``service.handle``.

    What ``AppRunner`` does for an ``Application``, for our own service: start before
    serving, shutdown once the listener is closed, stop after the last connection.
    """

    def __init__(self, service: Service, limits: Limits, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._service = service
        self._limits = limits

    async def _make_server(self) -> web.Server:
        await self._service.start()
        kwargs = dict(self._kwargs)
        cancellation = bool(kwargs.pop("handler_cancellation", False))
        return GuardedServer(
            self._service.handle, handler_cancellation=cancellation, limits=self._limits, **kwargs
        )

    async def shutdown(self) -> None:
        await self._service.shutdown()

    async def _cleanup_server(self) -> None:
        await self._service.stop()
