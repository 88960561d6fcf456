"""The HTTP contract with an in-memory sink: statuses, auth, limits, dead letters."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from pipeline import serve
from pipeline.app import Ingress, build_ingress
from pipeline.config import Config
from pipeline.http import guard
from pipeline.http.guard import GuardedProtocol, GuardedServer, Phase
from pipeline.sink.memory import MemorySink
from tests.support.ingress_server import IngressServer
from tests.support.payloads import TOKENS, fixture_bytes

Client = TestClient[web.BaseRequest, None]
MakeClient = Callable[..., Awaitable[Client]]
Start = Callable[[Ingress], Awaitable[Client]]
Writer = asyncio.StreamWriter

JSON = {"Content-Type": "application/json"}
TEXT = fixture_bytes("receive-message/text.json")


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def start(aiohttp_client: MakeClient) -> Start:
    """A client of the ingress served as ``serve`` serves it."""

    async def go(ingress: Ingress) -> Client:
        return await aiohttp_client(IngressServer(ingress))

    return go


@pytest.fixture
async def client(start: Start, config: Config, sink: MemorySink) -> Client:
    return await start(build_ingress(config, sink))


def url(event: str, token: str | None = TOKENS["acme"]) -> str:
    return f"/webhooks/{event}" + (f"?token={token}" if token else "")


async def test_published_answer_carries_event_id(client: Client, sink: MemorySink) -> None:
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert resp.status == 200
    answer = await resp.json()
    assert answer["status"] == "published"
    event, raw = sink.records
    assert event.event_id == answer["event_id"]
    assert event.topic == "plug.message.received"
    assert event.key == b"acme:5544999999999"
    # the raw archive: the body verbatim, keyed like its event
    assert raw.topic == "plug.raw"
    assert raw.value == TEXT
    assert raw.key == event.key
    assert dict(raw.headers)["event-id"] == event.event_id.encode()


async def test_a_body_that_pauses_reading_arrives_whole(
    start: Start, config: Config, sink: MemorySink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past the payload's high-water mark reading pauses, and the body's reads must resume
    # it: GuardedProtocol.resume_reading passes on only a resume of what was paused.
    resumed: list[bool] = []
    real = GuardedProtocol.resume_reading

    def spy(self: GuardedProtocol, resume_parser: bool = True) -> None:
        resumed.append(self._reading_paused)
        real(self, resume_parser)

    monkeypatch.setattr(GuardedProtocol, "resume_reading", spy)
    small = {**guard.handler_args(config), "read_bufsize": 1024}  # pauses past 2 KiB buffered
    monkeypatch.setattr(serve, "handler_args", lambda _config: small)
    limits = Config(tokens=config.tokens, max_body_bytes=4 << 20, max_in_flight_bytes=8 << 20)
    client = await start(build_ingress(limits, sink))
    body = TEXT[:-1] + b" " * (2 << 20) + TEXT[-1:]
    resp = await client.post(url("receive-message"), data=io.BytesIO(body), headers=JSON)
    assert resp.status == 200
    assert sink.records[1].value == body
    assert True in resumed  # it did pause, and was resumed


async def test_an_unpaused_read_does_not_feed_the_parser(
    client: Client, sink: MemorySink, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed: list[bytes] = []
    real = GuardedProtocol.data_received

    def spy(self: GuardedProtocol, data: bytes) -> None:
        fed.append(data)
        real(self, data)

    monkeypatch.setattr(GuardedProtocol, "data_received", spy)
    for _ in range(3):
        resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
        assert resp.status == 200
    assert len(sink.records) == 6
    assert fed
    assert b"" not in fed  # aiohttp's empty resume read is skipped


async def test_raw_archive_can_be_turned_off(
    start: Start, config: Config, sink: MemorySink
) -> None:
    client = await start(build_ingress(Config(tokens=config.tokens, raw_archive=False), sink))
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert resp.status == 200
    assert [r.topic for r in sink.records] == ["plug.message.received"]


async def test_bearer_token_names_the_tenant(client: Client, sink: MemorySink) -> None:
    headers = {**JSON, "Authorization": f"Bearer {TOKENS['globex']}"}
    resp = await client.post(url("receive-message", None), data=TEXT, headers=headers)
    assert resp.status == 200
    assert sink.records[0].key == b"globex:5544999999999"


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_missing_or_wrong_token_is_401_and_publishes_nothing(
    client: Client, sink: MemorySink, token: str | None
) -> None:
    resp = await client.post(url("receive-message", token), data=TEXT, headers=JSON)
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorised"
    assert sink.records == []


async def test_unknown_webhook_is_404(client: Client) -> None:
    resp = await client.post(url("nope"), data=TEXT, headers=JSON)
    assert resp.status == 404


async def test_other_methods_are_405_with_allow(client: Client) -> None:
    resp = await client.get(url("receive-message"))
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"


async def test_non_json_content_type_is_415(client: Client, sink: MemorySink) -> None:
    resp = await client.post(
        url("receive-message"), data=TEXT, headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 415
    assert sink.records == []


async def test_body_over_limit_is_413(client: Client, config: Config, sink: MemorySink) -> None:
    body = b" " * (config.max_body_bytes + 1)
    resp = await client.post(url("receive-message"), data=body, headers=JSON)
    assert resp.status == 413
    assert sink.records == []


async def test_chunked_body_over_limit_is_413(
    client: Client, config: Config, sink: MemorySink
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(config.max_body_bytes // 1024 + 2):
            yield b" " * 1024

    resp = await client.post(url("receive-message"), data=chunks(), headers=JSON)
    assert resp.status == 413
    assert sink.records == []


async def test_not_json_is_400_and_dead_lettered_verbatim(client: Client, sink: MemorySink) -> None:
    body = b'{"type": "ReceivedCallback", "phone": '
    resp = await client.post(url("receive-message"), data=body, headers=JSON)
    assert resp.status == 400
    error = await resp.json()
    assert error["error"] == "invalid_json"
    assert error["detail"]
    [dead] = sink.records
    assert dead.topic == "plug.deadletter"
    assert dead.value == body
    headers = dict(dead.headers)
    assert headers["webhook"] == b"receive-message"
    assert headers["tenant"] == b"acme"
    assert headers["error-reason"] == b"invalid_json"


async def test_wrong_shape_is_400_invalid_shape(client: Client, sink: MemorySink) -> None:
    resp = await client.post(url("message-status"), data=b'{"status": "READ"}', headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_shape"
    assert sink.records[0].topic == "plug.deadletter"


async def test_broker_down_is_503_with_retry_after(client: Client, sink: MemorySink) -> None:
    sink.available = False
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert resp.status == 503
    assert int(resp.headers["Retry-After"]) > 0
    ready = await client.get("/readyz")
    assert ready.status == 503


async def test_dead_letter_not_durable_is_503_not_400(client: Client, sink: MemorySink) -> None:
    sink.available = False
    resp = await client.post(url("receive-message"), data=b"not json", headers=JSON)
    assert resp.status == 503


async def test_in_flight_limit_answers_503(start: Start, config: Config, sink: MemorySink) -> None:
    ingress = build_ingress(Config(tokens=config.tokens, max_in_flight=1), sink)
    client = await start(ingress)
    ingress.state.in_flight = 1  # one request already being handled
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert resp.status == 503
    assert (await resp.json())["error"] == "overloaded"


async def test_in_flight_bytes_limit_answers_503(
    start: Start, config: Config, sink: MemorySink
) -> None:
    limits = Config(tokens=config.tokens, max_body_bytes=4096, max_in_flight_bytes=8192)
    ingress = build_ingress(limits, sink)
    client = await start(ingress)
    ingress.state.in_flight_bytes = 8192 - len(TEXT) + 1  # others hold nearly all of it
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert resp.status == 503
    assert (await resp.json())["error"] == "overloaded"
    ingress.state.in_flight_bytes = 0
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert resp.status == 200
    assert ingress.state.in_flight_bytes == 0  # released once answered


async def test_health_ready_and_metrics(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await client.post(url("receive-message"), data=TEXT, headers=JSON)
    text = await (await client.get("/metrics")).text()
    assert 'plug_webhooks_received_total{webhook="receive-message"}' in text


async def test_tokens_never_appear_in_responses(client: Client) -> None:
    resp = await client.post(url("receive-message", "wrong-token"), data=TEXT, headers=JSON)
    assert b"wrong-token" not in await resp.read()
    assert orjson.loads(await resp.read())["error"] == "unauthorised"


def test_each_worker_gets_a_spool_of_its_own() -> None:
    from pipeline.serve import _worker_config

    config = Config(spool_dir="/var/spool/plug")
    dirs = {_worker_config(config, i).spool_dir for i in range(3)}
    assert dirs == {f"/var/spool/plug/worker-{i}" for i in range(3)}
    assert _worker_config(Config(spool_dir=None), 1).spool_dir is None


async def test_healthz_fails_once_the_sink_cannot_heal(client: Client, sink: MemorySink) -> None:
    sink.unhealthy = "no record taken for 240 s while the cluster answers"
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert await resp.json() == {"status": "unhealthy", "reason": sink.unhealthy}


async def test_a_webhook_kafka_refuses_is_413_and_kept(client: Client, sink: MemorySink) -> None:
    sink.max_value_bytes["plug.message.received"] = 100
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert resp.status == 413
    assert (await resp.json())["error"] == "too_large_for_kafka"
    # only the raw copy was taken; the sink itself sets the refused event aside (see
    # test_heal): this fake just drops it, so nothing else is published
    assert [r.topic for r in sink.records] == ["plug.raw"]


async def test_only_the_raw_copy_refused_still_answers_200(
    client: Client, sink: MemorySink
) -> None:
    sink.max_value_bytes["plug.raw"] = 10
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert resp.status == 200
    assert (await resp.json())["status"] == "published"
    assert [r.topic for r in sink.records] == ["plug.message.received"]


async def test_a_body_over_the_limit_is_413_even_when_the_budget_is_spent(
    start: Start, config: Config, sink: MemorySink
) -> None:
    """The size check comes first: a body that can never fit is not 'overloaded'."""
    ingress = build_ingress(Config(tokens=config.tokens, max_body_bytes=4096), sink)
    client = await start(ingress)
    ingress.state.in_flight = ingress.config.max_in_flight  # every slot taken
    ingress.state.in_flight_bytes = ingress.config.max_in_flight_bytes
    resp = await client.post(url("receive-message"), data=b"x" * 5000, headers=JSON)
    assert resp.status == 413
    assert (await resp.json())["error"] == "too_large"


async def test_a_token_given_twice_is_refused(client: Client, sink: MemorySink) -> None:
    twice = url("receive-message") + f"&token={TOKENS['globex']}"
    resp = await client.post(twice, data=TEXT, headers=JSON)
    assert resp.status == 400
    both = {**JSON, "Authorization": f"Bearer {TOKENS['acme']}"}
    resp = await client.post(url("receive-message"), data=TEXT, headers=both)
    assert resp.status == 400
    assert sink.records == []


async def test_bearer_token_alone_names_the_tenant(client: Client, sink: MemorySink) -> None:
    headers = {**JSON, "Authorization": f"Bearer {TOKENS['globex']}"}
    resp = await client.post(url("receive-message", None), data=TEXT, headers=headers)
    assert resp.status == 200
    assert sink.records[0].key.startswith(b"globex:")


async def test_a_long_query_string_is_414(start: Start, config: Config, sink: MemorySink) -> None:
    client = await start(build_ingress(Config(tokens=config.tokens, max_query_bytes=64), sink))
    resp = await client.post(url("receive-message") + "&pad=" + "p" * 64, data=TEXT, headers=JSON)
    assert resp.status == 414
    assert (await resp.json())["error"] == "uri_too_long"


async def test_every_token_of_a_tenant_is_accepted(start: Start, sink: MemorySink) -> None:
    ingress = build_ingress(Config(tokens={"acme": ("old-token", "new-token")}), sink)
    client = await start(ingress)
    for token in ("old-token", "new-token"):
        resp = await client.post(url("receive-message", token), data=TEXT, headers=JSON)
        assert resp.status == 200
    assert (await client.post(url("receive-message", "x"), data=TEXT, headers=JSON)).status == 401


async def test_over_the_rate_limit_is_429_with_retry_after(
    start: Start, config: Config, sink: MemorySink
) -> None:
    limited = Config(tokens=config.tokens, rate_limit_per_s=0.5, rate_limit_burst=2)
    client = await start(build_ingress(limited, sink))
    statuses = [
        (await client.post(url("receive-message"), data=TEXT, headers=JSON)).status
        for _ in range(2)
    ]
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert statuses == [200, 200]
    assert resp.status == 429
    assert (await resp.json())["error"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 2
    # per tenant: another tenant is not held back
    other = await client.post(url("receive-message", TOKENS["globex"]), data=TEXT, headers=JSON)
    assert other.status == 200


async def test_no_rate_limit_by_default(client: Client) -> None:
    for _ in range(50):
        assert (await client.post(url("receive-message"), data=TEXT, headers=JSON)).status == 200


async def test_openapi_json_is_served(client: Client) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    assert "/webhooks/finish-attendance" in doc["paths"]


# -- the dispatch itself: what aiohttp's router and middleware did ----------------------


async def test_an_unknown_path_is_404_not_found(client: Client) -> None:
    resp = await client.get("/nowhere")
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"
    unknown = await client.post(url("nope"), data=TEXT, headers=JSON)
    assert (await unknown.json())["error"] == "unknown_webhook"


async def test_get_routes_take_head_and_refuse_post_with_allow(client: Client) -> None:
    head = await client.head("/healthz")
    assert head.status == 200
    assert await head.read() == b""
    post = await client.post("/healthz", data=b"{}")
    assert post.status == 405
    assert post.headers["Allow"] == "GET,HEAD"
    assert (await post.json())["error"] == "method_not_allowed"


async def test_an_unforeseen_error_is_503_never_200(client: Client, sink: MemorySink) -> None:
    async def broken(records: object) -> str:
        raise RuntimeError("a bug")

    sink.publish = broken  # type: ignore[assignment,method-assign]
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert resp.status == 503
    assert (await resp.json())["error"] == "internal"
    assert resp.headers["Retry-After"] == "5"


async def _raw_exchange(client: Client, head: bytes) -> tuple[asyncio.StreamReader, Writer]:
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(head)
    return reader, writer


def _expecting(token: str, length: int) -> bytes:
    return (
        f"POST /webhooks/receive-message?token={token} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()


async def test_expect_100_continue_only_once_the_request_may_send_its_body(
    client: Client, sink: MemorySink
) -> None:
    reader, writer = await _raw_exchange(client, _expecting(TOKENS["acme"], len(TEXT)))
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(TEXT)
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
    writer.close()
    assert [r.topic for r in sink.records] == ["plug.message.received", "plug.raw"]
    # a wrong token is refused at once: no 100, so the client need not send its body
    reader, writer = await _raw_exchange(client, _expecting("wrong", len(TEXT)))
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 401 ")
    writer.close()


async def test_the_sink_starts_before_serving_and_stops_after(
    config: Config, sink: MemorySink
) -> None:
    ingress = build_ingress(config, sink)
    server = IngressServer(ingress)
    assert not sink.started
    await server.start_server()
    assert sink.started
    await server.close()
    assert not sink.started
    assert ingress.state.stopping  # readiness failed from the moment the listener closed


async def test_an_answered_connection_waits_idle_under_the_keepalive_deadline(
    start: Start, config: Config, sink: MemorySink
) -> None:
    """Reading the body makes aiohttp resume its parser with no data: no new request."""
    client = await start(build_ingress(config, sink))
    resp = await client.post(url("receive-message"), data=TEXT, headers=JSON)
    assert resp.status == 200
    assert client.server.runner is not None
    server = client.server.runner.server
    assert isinstance(server, GuardedServer)
    [connection] = server.connections
    assert isinstance(connection, GuardedProtocol)
    # the answer may reach the client a moment before the server marks the connection idle
    deadline = asyncio.get_running_loop().time() + 5
    # the phase has no event to wait on: polled, with a deadline
    while connection.phase is not Phase.IDLE and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert connection.phase is Phase.IDLE


def _post(token: str, version: str = "1.1", extra: str = "") -> bytes:
    return (
        f"POST /webhooks/receive-message?token={token} HTTP/{version}\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(TEXT)}\r\n{extra}\r\n"
    ).encode() + TEXT


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")[:-2]
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
    body = await reader.readexactly(int(headers["content-length"]))
    return status.encode(), headers, body


async def test_the_200_is_written_whole_and_the_connection_kept(
    client: Client, sink: MemorySink
) -> None:
    """Two webhooks on one keep-alive connection, each answer complete and well formed."""
    reader, writer = await _raw_exchange(client, _post(TOKENS["acme"]))
    for turn in range(2):
        status, headers, body = await _answer(reader)
        assert status == b"HTTP/1.1 200 OK"
        assert headers["content-type"] == "application/json"
        assert headers["date"].endswith(" GMT")
        assert "connection" not in headers  # HTTP/1.1: kept open by default
        assert orjson.loads(body)["status"] == "published"
        if turn == 0:
            writer.write(_post(TOKENS["acme"]))
    writer.close()
    assert len(sink.records) == 4


@pytest.mark.parametrize(("version", "extra"), [("1.0", ""), ("1.1", "Connection: close\r\n")])
async def test_a_client_that_closes_gets_the_same_answer_through_aiohttp(
    client: Client, sink: MemorySink, version: str, extra: str
) -> None:
    reader, writer = await _raw_exchange(client, _post(TOKENS["acme"], version, extra))
    status, headers, body = await _answer(reader)
    assert status.endswith(b" 200 OK")
    assert headers["content-type"] == "application/json"
    assert orjson.loads(body)["event_id"] == sink.records[0].event_id
    assert await reader.read() == b""  # and the connection is closed after it
    writer.close()


# -- a refused client that is still sending gets its answer, not a reset ----------------


def _guarded(client: Client) -> GuardedServer:
    assert client.server.runner is not None
    server = client.server.runner.server
    assert isinstance(server, GuardedServer)
    return server


async def _until(check: Callable[[], bool], within_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + within_s
    # a connection's state has no event to wait on: polled, with a deadline
    while not check() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return check()


async def _send_all(writer: Writer, head: bytes, line: bytes, total: int) -> str:
    """The request line, then header lines up to ``total`` bytes; how the sending ended."""
    try:
        writer.write(head)
        sent = 0
        while sent < total:
            writer.write(line * 64)
            sent += len(line) * 64
            await writer.drain()
    except ConnectionError as exc:
        return type(exc).__name__
    return "sent"


@pytest.mark.parametrize(
    ("line", "status"),
    [
        # five 8 KB lines pass the 32 KB header budget: our 431
        (b"X-Filler: " + b"v" * 7990 + b"\r\n", b"431"),
        # 200-byte lines pass aiohttp's 64 fields first: its parser's 400
        (b"X-Filler: " + b"v" * 190 + b"\r\n", b"400"),
    ],
)
async def test_a_client_still_sending_when_refused_reads_the_answer(
    client: Client, line: bytes, status: bytes
) -> None:
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    sending = asyncio.create_task(_send_all(writer, head, line, 4 << 20))
    # the answer, then the server's FIN: read to the end, no reset on the way
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    assert answer.split(b" ", 2)[1] == status  # (aiohttp answers its parser's 400 as HTTP/1.0)
    assert await sending == "sent"  # every byte taken (and dropped), none refused by a reset
    writer.close()
    # the client's own FIN ends the lingering at once
    assert await _until(lambda: not _guarded(client).connections, within_s=1.5)


async def test_a_lingering_connection_is_closed_at_its_deadline(client: Client) -> None:
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Filler: " + b"v" * 40_000)
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    assert answer.split(b" ", 2)[1] == b"400"  # its one line is over the line limit
    [connection] = _guarded(client).connections
    assert isinstance(connection, GuardedProtocol)
    assert connection.phase is Phase.LINGER  # answered and half-closed, the client silent
    assert await _until(lambda: not _guarded(client).connections, within_s=guard.LINGER_S + 3)
    writer.close()


async def test_a_client_sending_on_and_on_is_reset_past_the_linger_budget(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guard, "LINGER_BYTES", 256 * 1024)
    assert client.port is not None
    _reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    line = b"X-Filler: " + b"v" * 7990 + b"\r\n"
    ended = await asyncio.wait_for(
        _send_all(writer, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", line, 1 << 30), timeout=20
    )
    assert ended in {"ConnectionResetError", "BrokenPipeError"}  # long before a GB
    writer.close()
