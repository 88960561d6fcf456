"""The HTTP ceiling: a minimal aiohttp app on uvloop that reads the body and answers 200.

No auth, no decoding, no Kafka: whatever this app does per second on one core is the
most any aiohttp ingress could do on the same machine. ``make bench`` (``bench/e2e/``) runs it.

    python bench/baselines/ceiling.py --host 127.0.0.1 --port 18081
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop
from aiohttp import web

_OK = b'{"status":"ok"}'


async def webhook(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_OK, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=_OK, content_type="application/json")


def build_app() -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/webhooks/{event}", webhook)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18081)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(build_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
