"""The wallboard's HTTP answers without Kafka: tokens, paths, the page's policy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re

from aiohttp.test_utils import make_mocked_request

from pipeline.config import Config, KafkaSettings
from pipeline.http.tokens import TokenTable
from pipeline.live import page
from pipeline.live.board import Board
from pipeline.live.feed import Feed
from pipeline.live.metrics import LiveMetrics
from pipeline.live.service import LiveService
from pipeline.live.state import LiveState

VIEWERS: dict[str, tuple[str, ...]] = {"acme": ("acme-viewer",), "globex": ("globex-viewer",)}


def _service() -> LiveService:
    config = Config(viewer_tokens=VIEWERS)
    board = Board(LiveState("UTC", 60), tenants=VIEWERS)
    metrics = LiveMetrics()
    feed = Feed(KafkaSettings(), board, metrics)
    return LiveService(config, board, feed, metrics, TokenTable(VIEWERS), page.build())


def _answer(
    service: LiveService, path: str, method: str = "GET", **headers: str
) -> tuple[int, bytes]:
    async def ask() -> tuple[int, bytes]:
        response = await service.handle(make_mocked_request(method, path, headers=headers))
        return response.status, getattr(response, "body", b"") or b""

    return asyncio.run(ask())


def test_the_tenant_routes_need_a_viewer_token() -> None:
    service = _service()
    for path in ("/", "/api/now", "/api/stream"):
        assert _answer(service, path)[0] == 401
        assert _answer(service, path + "?token=nope")[0] == 401
        assert _answer(service, path, Authorization="Bearer nope")[0] == 401
    assert _answer(service, "/api/now?token=acme-viewer")[0] == 503  # not caught up yet
    service.board.ready.set()
    status, body = _answer(service, "/api/now?token=acme-viewer&tenant=globex")
    assert status == 200
    assert json.loads(body)["tenant"] == "acme"
    status, body = _answer(service, "/api/now", Authorization="Bearer globex-viewer")
    assert json.loads(body)["tenant"] == "globex"


def test_other_paths_and_methods_are_refused() -> None:
    service = _service()
    assert _answer(service, "/api/now/globex?token=acme-viewer")[0] == 404
    assert _answer(service, "/webhooks/finish-attendance?token=acme-viewer")[0] == 404
    assert _answer(service, "/api/now?token=acme-viewer", "POST")[0] == 405
    assert _answer(service, "/?token=" + "x" * 5000)[0] == 414
    status, body = _answer(service, "/healthz")
    assert (status, json.loads(body)["caught_up"]) == (200, False)


def test_the_page_allows_its_own_script_and_style_only() -> None:
    built = page.build()
    html = built.html.decode()
    policy = built.headers["Content-Security-Policy"]
    for tag in ("script", "style"):
        (body,) = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "http" not in html.replace("http-equiv", "")  # nothing to fetch from elsewhere
    assert built.headers["Referrer-Policy"] == "no-referrer"
