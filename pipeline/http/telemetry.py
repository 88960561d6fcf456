"""Counts every webhook answer by webhook and status: the status mix the dashboards show.

The outermost middleware, so it sees the status the client got, whichever layer chose it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from pipeline.metrics import METRICS
from pipeline.webhooks import Webhook

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PREFIX = "/webhooks/"
_KNOWN = {w.value for w in Webhook}


def webhook_label(path: str) -> str | None:
    """The webhook a path names; ``unknown`` for other webhook paths (bounded labels)."""
    if not path.startswith(_PREFIX):
        return None
    name = path[len(_PREFIX) :]
    return name if name in _KNOWN else "unknown"


@web.middleware
async def responses_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    webhook = webhook_label(request.path)
    if webhook is None:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        METRICS.responses.labels(webhook, str(exc.status)).inc()
        raise
    except Exception:
        METRICS.responses.labels(webhook, "500").inc()  # what aiohttp answers for it
        raise
    METRICS.responses.labels(webhook, str(response.status)).inc()
    return response
