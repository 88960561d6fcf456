"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from pipeline.errors import NotDurable, PipelineError, RateLimited, RequestTimeout
from pipeline.metrics import METRICS

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, reason: str, detail: str) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"error": reason, "detail": detail}),
        content_type="application/json",
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PipelineError as exc:
        METRICS.rejected.labels(exc.reason).inc()
        response = error_response(exc.status, exc.reason, str(exc))
        if isinstance(exc, NotDurable):
            response.headers["Retry-After"] = str(exc.retry_after_s)
            log.warning("503 for %s: %s", request.path, exc)
        elif isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        elif isinstance(exc, RequestTimeout):
            response.force_close()  # the rest of a late body is not worth waiting for
        return response
    except web.HTTPException as exc:
        if exc.status in (404, 405, 413):
            reason = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}[exc.status]
            METRICS.rejected.labels(reason).inc()
            response = error_response(exc.status, reason, exc.reason)
            response.headers.update({k: v for k, v in exc.headers.items() if k == "Allow"})
            return response
        raise
    except Exception:
        # Never a 200 on failure: anything unforeseen is a 503 that Plug may retry.
        log.exception("unexpected error on %s", request.path)
        METRICS.rejected.labels("internal").inc()
        response = error_response(503, "internal", "unexpected error; try again")
        response.headers["Retry-After"] = "5"
        return response
