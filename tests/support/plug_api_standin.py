"""A local stand-in for Plug's ``PUT /api/integrations/update-webhooks``.

It answers as Plug's documentation says (401, 405, 415, HTTPS-only URLs) and
records every request, so tests can assert on exactly what reached it.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass, field

import msgspec
from aiohttp import web

UPDATE_WEBHOOKS_PATH = "/api/integrations/update-webhooks"
PLUG_FIELDS = (
    "finishAttendance",
    "startAttendance",
    "receiveMessage",
    "sendingMessage",
    "messageDeliveryError",
    "messageStatus",
    "whenDisconnecting",
)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PlugApiStandIn:
    """Plug's API for one company whose API token is ``token``."""

    token: str
    # Answer this many requests with ``fail_status`` before behaving.
    fail_first: int = 0
    fail_status: int = 503
    # Hold this many requests unanswered until ``release()``, to provoke client timeouts.
    hang_first: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", UPDATE_WEBHOOKS_PATH, self._update_webhooks)
        return app

    def release(self) -> None:
        self._released.set()

    async def _update_webhooks(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            RecordedRequest(request.method, request.path_qs, dict(request.headers), body)
        )
        if self.hang_first > 0:
            self.hang_first -= 1
            await self._released.wait()
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.json_response({"error": "temporarily unavailable"}, status=self.fail_status)
        if request.method != "PUT":
            return web.json_response({"error": "Method Not Allowed"}, status=405)
        authorization = request.headers.get("Authorization", "")
        if not hmac.compare_digest(authorization.encode(), self.token.encode()):
            return web.json_response({"error": "Unauthorized"}, status=401)
        if request.content_type != "application/json":
            return web.json_response({"error": "Unsupported Media Type"}, status=415)
        return self._check_body(body)

    def _check_body(self, body: bytes) -> web.Response:
        try:
            webhooks = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(webhooks, dict):
            return web.json_response({"error": "body is not an object"}, status=400)
        for name in PLUG_FIELDS:
            url = webhooks.get(name)
            if not isinstance(url, str):
                return web.json_response({"error": f"{name} is required"}, status=400)
            if not url.startswith("https://"):
                return web.json_response({"error": f"{name} is not HTTPS"}, status=400)
        return web.json_response({"success": True})
