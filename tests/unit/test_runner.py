"""The load client against a tiny local ingress stand-in."""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pipeline.errors import ConfigError
from pipeline.simulate import command
from pipeline.simulate.generator import Generator
from pipeline.simulate.runner import LoadSpec, Runner, execute, exit_code

ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass
class FakeIngress:
    """Answers 200 with an event id, or 503 on every ``fail_every``-th request."""

    fail_every: int = 0
    hold: asyncio.Event | None = None
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def handle(self, request: web.Request) -> web.Response:
        n = next(self.counter)
        body = await request.read()
        auth = {
            "token": request.query.get("token", ""),
            "auth": request.headers.get("Authorization", ""),
        }
        self.requests.append((request.match_info["event"], auth, body))
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_every and n % self.fail_every == 0:
            return web.json_response(
                {"error": "overloaded"}, status=503, headers={"Retry-After": "1"}
            )
        event_id = uuid.uuid4().hex
        self.acked.append(f"{event_id} {request.match_info['event']}")
        return web.json_response({"event_id": event_id, "status": "published"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/{event}", self.handle)
        return app


async def start(aiohttp_server: ServerFactory, ingress: FakeIngress) -> str:
    server = await aiohttp_server(ingress.app(), host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


def spec(target: str, **overrides: Any) -> LoadSpec:
    values: dict[str, Any] = {"target": target, "rate": 5000.0, "count": 40, "token": "s3cret"}
    return LoadSpec(**{**values, **overrides})


async def test_open_loop_counts_answers_and_writes_acked_ids(aiohttp_server: ServerFactory) -> None:
    ingress = FakeIngress()
    target = await start(aiohttp_server, ingress)
    acked = io.StringIO()
    stats = await Runner(spec(target), iter(Generator(1)), acked=acked).run()
    assert stats.sent == 40
    assert stats.by_status == Counter({200: 40})
    assert stats.connection_errors == stats.dropped == 0
    assert len(stats.latencies_ms) == 40
    assert sorted(acked.getvalue().splitlines()) == sorted(ingress.acked)
    assert all(auth == {"token": "s3cret", "auth": ""} for _, auth, _ in ingress.requests)
    assert exit_code(stats) == 0


async def test_bodies_arrive_as_generated(aiohttp_server: ServerFactory) -> None:
    ingress = FakeIngress()
    target = await start(aiohttp_server, ingress)
    await Runner(spec(target, count=60), iter(Generator(2))).run()
    expected = Counter((webhook.value, body) for webhook, body in Generator(2).take(60))
    assert Counter((event, body) for event, _, body in ingress.requests) == expected


async def test_503s_are_counted_and_fail_the_run(aiohttp_server: ServerFactory) -> None:
    ingress = FakeIngress(fail_every=3)
    target = await start(aiohttp_server, ingress)
    acked, out = io.StringIO(), io.StringIO()
    code = await execute(spec(target, count=30), iter(Generator(3)), acked=acked, out=out)
    assert code == 1
    assert sorted(acked.getvalue().splitlines()) == sorted(ingress.acked)
    assert len(ingress.acked) == 20
    assert "200=20 503=10" in out.getvalue()


async def test_tolerate_errors_exits_zero(aiohttp_server: ServerFactory) -> None:
    target = await start(aiohttp_server, FakeIngress(fail_every=2))
    code = await execute(
        spec(target, count=10), iter(Generator(4)), tolerate_errors=True, out=io.StringIO()
    )
    assert code == 0


async def test_closed_loop_stops_at_count(aiohttp_server: ServerFactory) -> None:
    ingress = FakeIngress()
    target = await start(aiohttp_server, ingress)
    load = spec(target, rate=None, concurrency=4, count=25, token="t", token_in="header")
    stats = await Runner(load, iter(Generator(5))).run()
    assert stats.sent == len(ingress.requests) == 25
    assert stats.by_status == Counter({200: 25})
    assert all(auth == {"token": "", "auth": "Bearer t"} for _, auth, _ in ingress.requests)


async def test_connection_errors_fail_the_run(unused_tcp_port: int) -> None:
    target = f"http://127.0.0.1:{unused_tcp_port}"
    out = io.StringIO()
    code = await execute(spec(target, count=3), iter(Generator(6)), out=out)
    assert code == 1
    assert "connection errors: 3" in out.getvalue()


async def test_open_loop_drops_beyond_the_outstanding_cap(aiohttp_server: ServerFactory) -> None:
    ingress = FakeIngress(hold=asyncio.Event())
    target = await start(aiohttp_server, ingress)
    load = spec(target, rate=1000.0, count=None, duration_s=0.05, max_outstanding=2)
    runner = Runner(load, iter(Generator(7)))
    task = asyncio.create_task(runner.run())
    await runner.schedule_over.wait()
    assert ingress.hold is not None
    ingress.hold.set()
    stats = await task
    assert stats.sent == 2
    assert stats.dropped == 48
    assert stats.by_status == Counter({200: 2})


async def test_finite_item_source_ends_the_run(aiohttp_server: ServerFactory) -> None:
    target = await start(aiohttp_server, FakeIngress())
    stats = await Runner(spec(target, count=100), iter(Generator(8).take(5))).run()
    assert stats.sent == 5


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    return parser.parse_args(["simulate", *argv])


def test_command_defaults_and_token_from_environment() -> None:
    args = parse("--tenant", "acme", "--rate", "500", "--duration", "30")
    assert args.func is command.run
    env = {"PLUG_PIPELINE_TOKENS": "acme=s3cret,globex=t0ken"}
    token = command.resolve_token(args, env)
    assert token == "s3cret"
    load = command.build_spec(args, token)
    assert (load.rate, load.duration_s, load.count, load.token_in) == (500, 30, None, "query")
    assert command.resolve_token(parse("--token", "x"), env) == "x"
    assert command.resolve_token(parse(), {}) is None
    with pytest.raises(ConfigError):
        command.resolve_token(parse("--tenant", "nope"), env)


def test_command_rejects_rate_with_concurrency() -> None:
    with pytest.raises(SystemExit):
        parse("--rate", "10", "--concurrency", "2")
    with pytest.raises(SystemExit):
        parse("--rate", "0")
    assert command.build_spec(parse("--count", "5"), None).duration_s is None
    assert command.build_spec(parse(), None).rate == command.DEFAULT_RATE
