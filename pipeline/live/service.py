"""The wallboard's HTTP side: the page, the figures as JSON, their stream, health, metrics.

A viewer token names one tenant and is the only way to name one: no URL takes a tenant,
so a token of tenant A reaches A's figures and nothing else, whatever the path or query.
The token comes in the query (``?token=``, what a TV's browser can be given) or as
``Authorization: Bearer``; it is never logged (no access log; our lines name the tenant).

Routes (GET only, exact paths):

    /              the page (pipeline/live/page.py), 401 without a viewer token
    /api/now       the tenant's figures as JSON; 503 while the feed catches up
    /api/stream    the same figures as server-sent events, one per change or second
    /healthz       200 while the feed runs (``caught_up`` says whether it has caught up)
    /metrics       Prometheus: the feed's lag per topic, streams, restarts

``LiveService`` is a ``pipeline.http.guard.Service``: ``GuardedRunner`` gives it the
ingress's edge limits (deadlines per phase, a bound on connections, header sizes). A
stream is a request being answered, so no read deadline cuts it; the bound on
connections bounds the streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgspec
from aiohttp import hdrs, web
from prometheus_client import generate_latest

from pipeline.config import Config
from pipeline.http.tokens import TokenTable
from pipeline.live.board import Board, Mailbox
from pipeline.live.feed import Feed
from pipeline.live.figures import TenantNow
from pipeline.live.metrics import LiveMetrics
from pipeline.live.page import Page
from pipeline.runtime.metrics import METRICS
from pipeline.runtime.tasks import cancel, supervise

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0  # a comment line on an idle stream: proxies close silent connections
_JSON = "application/json"


def figures_json(now: TenantNow, config: Config, caught_up: bool) -> bytes:
    """What ``/api/now`` and each stream event carry: the figures and their settings."""
    document: dict[str, Any] = msgspec.to_builtins(now)
    document["caught_up"] = caught_up
    document["sla_seconds"] = config.kpi_sla_seconds
    document["time_zone"] = config.kpi_time_zone
    return msgspec.json.encode(document)


class LiveService:
    def __init__(
        self,
        config: Config,
        board: Board,
        feed: Feed,
        metrics: LiveMetrics,
        viewers: TokenTable,
        page: Page,
    ) -> None:
        self.config = config
        self.board = board
        self.feed = feed
        self.metrics = metrics
        self.viewers = viewers
        self.page = page
        self._closing = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._streams = 0
        self._routes = {
            "/": self._page,
            "/api/now": self._now,
            "/api/stream": self._stream,
        }

    # -- lifecycle (pipeline.http.guard.Service) ---------------------------------------

    async def start(self) -> None:
        await self.board.start()
        self._tasks.append(supervise("live-feed", self.feed.run))
        self._tasks.append(supervise("live-gauges", self._gauges))

    async def shutdown(self) -> None:
        self._closing.set()  # streams end; their clients reconnect to the next process

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel(task)
        self._tasks.clear()
        await self.board.stop()

    async def _gauges(self) -> None:
        while True:
            for topic, behind in self.feed.lag().items():
                self.metrics.lag.labels(topic).set(behind)
            self.metrics.caught_up.set(1 if self.board.ready.is_set() else 0)
            self.metrics.streams.set(self._streams)
            if self.board.last_published is not None:
                self.metrics.publish_age.set(time.time() - self.board.last_published)
            await asyncio.sleep(1.0)

    # -- requests ----------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):
            return _error(405, "method_not_allowed", {"Allow": "GET"})
        if len(request.query_string) > self.config.max_query_bytes:
            return _error(414, "query_too_long")
        path = request.path
        if path == "/healthz":
            return self._healthz()
        if path == "/metrics":
            body = generate_latest(self.metrics.registry) + generate_latest(METRICS.registry)
            return web.Response(body=body, content_type="text/plain", charset="utf-8")
        route = self._routes.get(path)
        if route is None:
            return _error(404, "not_found")
        tenant = self._tenant(request)
        if tenant is None:
            self.metrics.refused.labels("token").inc()
            return _error(401, "unauthorized", {"WWW-Authenticate": "Bearer"})
        return await route(request, tenant)

    def _tenant(self, request: web.BaseRequest) -> str | None:
        token = request.query.get("token")
        if token is None:
            scheme, _, value = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        if not token:
            return None
        return self.viewers.tenant_for(token)

    def _healthz(self) -> web.StreamResponse:
        caught_up = self.board.ready.is_set()
        body = {"status": "ok", "caught_up": caught_up, "catch_up_s": self.feed.catch_up_s}
        return web.json_response(body)

    async def _page(self, request: web.BaseRequest, tenant: str) -> web.StreamResponse:
        return web.Response(body=self.page.html, headers=self.page.headers)

    async def _now(self, request: web.BaseRequest, tenant: str) -> web.StreamResponse:
        if not self.board.ready.is_set():
            return _error(503, "catching_up", {"Retry-After": "1"})
        body = figures_json(self.board.now(tenant), self.config, True)
        return web.Response(body=body, content_type=_JSON, headers=_NO_STORE)

    async def _stream(self, request: web.BaseRequest, tenant: str) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                hdrs.CONTENT_TYPE: "text/event-stream",
                hdrs.CACHE_CONTROL: "no-store",
                "X-Accel-Buffering": "no",  # nginx: pass each event on as it comes
            }
        )
        await response.prepare(request)
        box = self.board.subscribe(tenant)
        self._streams += 1
        try:
            # the figures of this instant first: the page fills at once, then follows
            ready = self.board.ready.is_set()
            await response.write(_event(figures_json(self.board.now(tenant), self.config, ready)))
            while not self._closing.is_set():
                taken = await self._next(box)
                if taken is None:
                    await response.write(b": keep-alive\n\n")
                    continue
                for figures in taken:
                    await response.write(_event(figures_json(figures, self.config, True)))
        except ConnectionResetError:
            pass  # the viewer left
        finally:
            self.board.unsubscribe(box)
            self._streams -= 1
        return response

    async def _next(self, box: Mailbox) -> list[TenantNow] | None:
        """The figures published next, or None after ``KEEPALIVE_S`` (or at shutdown)."""
        taking = asyncio.ensure_future(box.take())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            done, _ = await asyncio.wait(
                {taking, closing}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closing.cancel()
            if not taking.done():
                taking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await taking
        return taking.result() if taking in done else None


_NO_STORE = {hdrs.CACHE_CONTROL: "no-store"}


def _event(body: bytes) -> bytes:
    return b"data: " + body + b"\n\n"


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=msgspec.json.encode({"error": reason}),
        content_type=_JSON,
        headers=headers,
    )
