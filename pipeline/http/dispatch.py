"""Our routes, matched by exact path: what aiohttp's router and middleware did, for less.

Every request of the ingress, in production and in the tests, comes through
``Dispatch``: a dict from path to {method: handler}, then the handler, with the errors
it raises turned into answers by ``responses`` (the only place that does). The paths
are few and fixed, so no pattern is matched: ``/webhooks/<name>`` for an unknown name
is a 404 that names the known ones, another method a 405 with ``Allow``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11

from pipeline.errors import (
    ExpectationFailed,
    MethodNotAllowed,
    NotFound,
    PipelineError,
    Rejected,
    UnknownWebhook,
)
from pipeline.http.responses import answer_error, answer_unexpected
from pipeline.http.telemetry import count_answer

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
WEBHOOKS_PREFIX = "/webhooks/"


async def send_continue(request: web.BaseRequest) -> None:
    """``Expect: 100-continue``: tell the client to send its body, as aiohttp's router did.

    A handler calls it once it has checked what it can before the body (a webhook: its
    token, media type and declared length), so a refused client never sends its body.
    """
    expect = request.headers.get(hdrs.EXPECT)
    if expect is None or request.version != HttpVersion11:
        return
    if expect.lower() != "100-continue":
        raise ExpectationFailed(f"unknown Expect: {expect}")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # the answer proper has not begun


class Dispatch:
    """The ingress's request handler for aiohttp's low-level ``web.Server``."""

    def __init__(
        self, routes: Mapping[str, Mapping[str, Handler]], webhook_names: tuple[str, ...]
    ) -> None:
        self._routes = {path: dict(methods) for path, methods in routes.items()}
        for methods in self._routes.values():
            if hdrs.METH_GET in methods:
                methods.setdefault(hdrs.METH_HEAD, methods[hdrs.METH_GET])
        # the routes that read no body answer an Expect at once; webhooks after their checks
        self._expect_now = {path: not path.startswith(WEBHOOKS_PREFIX) for path in self._routes}
        self._webhook_names = webhook_names

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        try:
            methods = self._routes.get(path)
            if methods is None:
                raise self._not_found(path)
            handler = methods.get(request.method)
            if handler is None:
                allow = sorted(methods)
                raise MethodNotAllowed(f"{request.method} is not allowed; use {allow}", allow)
            if self._expect_now[path]:
                await send_continue(request)
            response = await handler(request)
        except PipelineError as exc:
            response = answer_error(request, exc)
        except Exception as exc:  # the edge: nothing unforeseen is answered as success
            response = answer_unexpected(request, exc)
        count_answer(path, response.status)
        return response

    def _not_found(self, path: str) -> Rejected:
        if path.startswith(WEBHOOKS_PREFIX):
            name = path[len(WEBHOOKS_PREFIX) :]
            known = ", ".join(self._webhook_names)
            return UnknownWebhook(f"no webhook named {name!r}; known: {known}")
        return NotFound(f"no route for {path}")
