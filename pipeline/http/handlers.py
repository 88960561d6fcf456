"""Request -> ingest -> response. The only module that sees both aiohttp and the sink.

``Endpoints`` holds the handlers; ``Dispatch`` (``dispatch.py``) routes to them and
turns what they raise into answers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from dataclasses import dataclass

import orjson
from aiohttp import hdrs, web

from pipeline import ingest
from pipeline.config import DEFAULT_TENANT, Config
from pipeline.errors import (
    BadRequest,
    Malformed,
    Overloaded,
    RateLimited,
    RefusedByKafka,
    RequestTimeout,
    TooLarge,
    Unauthorised,
    UnsupportedMedia,
    UriTooLong,
)
from pipeline.http.accepted import Accepted
from pipeline.http.dispatch import Handler, send_continue
from pipeline.http.guard import BodyTimeout
from pipeline.http.state import State
from pipeline.record import Record
from pipeline.runtime.metrics import METRICS
from pipeline.sink.base import Sink
from pipeline.webhooks import Webhook

log = logging.getLogger(__name__)

_RECEIVED = {w: METRICS.received.labels(w.value) for w in Webhook}
_BEARER = "bearer "


def tenant_of(request: web.BaseRequest, config: Config, state: State) -> str:
    """The tenant the request's token names; checked before any of the body is read."""
    if len(request.query_string) > config.max_query_bytes:
        raise UriTooLong(f"the query string is over {config.max_query_bytes} bytes")
    given = request.query.getall("token", [])
    for header in request.headers.getall(hdrs.AUTHORIZATION, []):
        if header[: len(_BEARER)].lower() == _BEARER:
            given.append(header[len(_BEARER) :].strip())
    if len(given) > 1:
        # which one would count is a guess a proxy and we might make differently
        raise BadRequest("give the token once: one ?token= or one Authorization: Bearer")
    if not len(state.tokens):
        return DEFAULT_TENANT
    if not given or not given[0]:
        raise Unauthorised("a tenant token is required (?token= or Authorization: Bearer)")
    tenant = state.tokens.tenant_for(given[0])
    if tenant is None:
        raise Unauthorised("the token is not valid")
    return tenant


def _check_media(request: web.BaseRequest) -> None:
    if request.headers.get(hdrs.CONTENT_TYPE) == "application/json":
        return  # what Plug sends: no need for aiohttp to parse it (~2.5 us)
    ctype = request.content_type  # aiohttp defaults a missing header to octet-stream
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise UnsupportedMedia(f"Content-Type must be application/json, not {ctype}")


@dataclass
class _Held:
    """Body bytes this request holds, charged to the in-flight budget as they arrive."""

    state: State
    size: int = 0

    def add(self, count: int, budget: int) -> None:
        self.size += count
        self.state.in_flight_bytes += count
        if self.state.in_flight_bytes > budget:
            raise Overloaded(f"{self.state.in_flight_bytes} body bytes in flight, over the limit")

    def release(self) -> None:
        self.state.in_flight_bytes -= self.size
        self.size = 0


async def read_body(request: web.BaseRequest, limit: int, held: _Held, budget: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes rather than buffered whole.

    Bytes are charged as they arrive, not as claimed: a client that promises a large
    body and trickles it holds only what it sent (and the body deadline ends it).
    """
    content = request.content
    try:
        if content.is_eof():
            # Every byte came with the headers (most webhooks do): one piece, no iteration.
            body = content.read_nowait()
            if len(body) > limit:
                raise TooLarge(f"body is over the {limit}-byte limit")
            held.add(len(body), budget)
            return body
    except BodyTimeout as exc:
        raise RequestTimeout(str(exc)) from exc
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in content.iter_any():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"body is over the {limit}-byte limit")
            held.add(len(chunk), budget)
            chunks.append(chunk)
    except BodyTimeout as exc:
        raise RequestTimeout(str(exc)) from exc
    return b"".join(chunks)


class Endpoints:
    """The ingress's handlers over its config, sink and state; ``routes()`` for ``Dispatch``."""

    def __init__(self, config: Config, sink: Sink, state: State) -> None:
        self.config = config
        self.sink = sink
        self.state = state

    def routes(self) -> dict[str, dict[str, Handler]]:
        routes: dict[str, dict[str, Handler]] = {
            f"/webhooks/{hook.value}": {hdrs.METH_POST: self._webhook_handler(hook)}
            for hook in Webhook
        }
        routes["/healthz"] = {hdrs.METH_GET: self.healthz}
        routes["/readyz"] = {hdrs.METH_GET: self.readyz}
        routes["/metrics"] = {hdrs.METH_GET: self.metrics}
        routes["/openapi.json"] = {hdrs.METH_GET: self.openapi}
        return routes

    def _webhook_handler(self, hook: Webhook) -> Handler:
        # a partial, not a closure coroutine: one coroutine frame less per webhook
        return functools.partial(self._webhook, hook=hook)

    async def _webhook(self, request: web.BaseRequest, hook: Webhook) -> web.StreamResponse:
        config = self.config
        state = self.state
        tenant = tenant_of(request, config, state)
        _check_media(request)
        length = request.content_length
        if length is not None and length > config.max_body_bytes:
            # at once, before any budget is looked at: no amount of waiting makes it fit
            raise TooLarge(f"body of {length} bytes is over the {config.max_body_bytes}-byte limit")
        if state.limiter is not None and (wait := state.limiter.take(tenant)):
            raise RateLimited(f"tenant {tenant} is over its rate limit", math.ceil(wait))
        await send_continue(request)
        held = _Held(state)
        try:
            body = await read_body(request, config.max_body_bytes, held, config.max_in_flight_bytes)
            # The count bounds webhooks waiting on Kafka; one still arriving holds no slot.
            if state.in_flight >= config.max_in_flight:
                raise Overloaded(f"{state.in_flight} webhooks in flight, the limit")
            state.in_flight += 1
            try:
                _RECEIVED[hook].inc()
                return await self._accept(hook, tenant, body)
            finally:
                state.in_flight -= 1
        finally:
            held.release()

    async def _accept(self, hook: Webhook, tenant: str, body: bytes) -> web.StreamResponse:
        config = self.config
        sink = self.sink
        received_at = time.time_ns() // 1_000_000
        try:
            record = ingest.ingest(hook, tenant, body, received_at, config.topic_prefix)
        except Malformed as exc:
            dead = ingest.deadletter(hook, tenant, body, received_at, config.topic_prefix, exc)
            # The raw bytes must be durable before we say 400: a 503 asks Plug to send again.
            with contextlib.suppress(RefusedByKafka):  # then the sink kept it in quarantine
                await sink.publish((dead,))
            METRICS.deadlettered.inc()
            log.info("dead-lettered a %s webhook of %s: %s", hook.value, tenant, exc.reason)
            raise
        records: tuple[Record, ...] = (record,)
        if config.raw_archive:
            raw = ingest.raw(hook, tenant, body, received_at, config.topic_prefix, record)
            records = (record, raw)
        try:
            durability = await sink.publish(records)
        except RefusedByKafka as exc:
            # The sink has set the refused records aside. The event itself refused: 413; only
            # its raw copy refused: the event is durable, and that is what the answer is about.
            if any(r.topic == record.topic for r in exc.refused):
                raise
            log.warning("raw copy of %s set aside: %s", record.event_id, exc.reason)
            durability = "published"
        return Accepted(orjson.dumps({"event_id": record.event_id, "status": durability}))

    async def healthz(self, request: web.BaseRequest) -> web.StreamResponse:
        problem = self.sink.health()
        if problem is not None:
            # The ingress cannot heal: an orchestrator should restart it.
            return web.json_response({"status": "unhealthy", "reason": problem}, status=503)
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.BaseRequest) -> web.StreamResponse:
        sink = self.sink
        if self.state.stopping:
            return web.json_response({"status": "stopping", **sink.describe()}, status=503)
        if not await sink.ready():
            return web.json_response({"status": "not ready", **sink.describe()}, status=503)
        return web.json_response({"status": "ready", **sink.describe()})

    async def metrics(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=METRICS.render(), content_type="text/plain", charset="utf-8")

    async def openapi(self, request: web.BaseRequest) -> web.StreamResponse:
        from pipeline.specs.openapi import document_json  # built once, on first use

        return web.Response(body=document_json(), content_type="application/json")
