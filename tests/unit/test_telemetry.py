"""Every webhook answer is counted by webhook and the status the client got."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient

from pipeline.app import build_ingress
from pipeline.config import Config
from pipeline.runtime.metrics import METRICS
from pipeline.sink.memory import MemorySink
from tests.support.ingress_server import IngressServer
from tests.support.payloads import TOKENS, fixture_bytes

Client = TestClient[web.BaseRequest, None]
MakeClient = Callable[..., Awaitable[Client]]
JSON = {"Content-Type": "application/json"}


def answered(webhook: str, status: int) -> float:
    labels = {"webhook": webhook, "status": str(status)}
    return METRICS.registry.get_sample_value("plug_webhook_responses_total", labels) or 0.0


async def test_status_mix_per_webhook(aiohttp_client: MakeClient, config: Config) -> None:
    sink = MemorySink()
    client = await aiohttp_client(IngressServer(build_ingress(config, sink)))
    text = fixture_bytes("receive-message/text.json")
    hook = "/webhooks/receive-message"
    cases = [
        (hook, f"?token={TOKENS['acme']}", text, 200),
        (hook, "?token=wrong", text, 401),
        (hook, f"?token={TOKENS['acme']}", b"{not json", 400),
        ("/webhooks/no-such-hook", f"?token={TOKENS['acme']}", text, 404),
    ]
    before = {(path, status): answered(_label(path), status) for path, _q, _b, status in cases}
    for path, query, body, status in cases:
        resp = await client.post(path + query, data=body, headers=JSON)
        assert resp.status == status
    for path, _query, _body, status in cases:
        assert answered(_label(path), status) == before[(path, status)] + 1
    # a second answer of a kind already seen is counted too
    resp = await client.post(f"{hook}?token={TOKENS['acme']}", data=text, headers=JSON)
    assert resp.status == 200
    assert answered("receive-message", 200) == before[(hook, 200)] + 2
    await client.get("/healthz")  # not a webhook: not counted
    assert (
        METRICS.registry.get_sample_value(
            "plug_webhook_responses_total", {"webhook": "healthz", "status": "200"}
        )
        is None
    )


def _label(path: str) -> str:
    name = path.rsplit("/", 1)[1]
    return name if name == "receive-message" else "unknown"
