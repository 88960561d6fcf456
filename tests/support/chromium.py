"""Headless Chromium driven over the DevTools protocol, for tests that look at a page.

Debian's ``chromium`` (installed by ``deploy/chromium/ensure-chromium.sh``) is
started with ``--remote-debugging-port=0``; the port it picked is read from its
``DevTools listening on ws://...`` line, and one WebSocket (``websockets``) carries
every command. A ``Page`` records what a person would not see but a test must:
uncaught exceptions, console errors, error log entries and every request the page
made, so "no script errors" and "no network loads" can be asserted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")
START_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 60.0


class BrowserError(Exception):
    pass


def chromium_binary() -> str:
    """``CHROMIUM`` if set, else ``chromium`` on PATH (make test installs it)."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        raise BrowserError("chromium not found: run deploy/chromium/ensure-chromium.sh")
    return found


@dataclass
class Page:
    browser: Browser
    session_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def record(self, method: str, params: dict[str, Any]) -> None:
        self.events.append({"method": method, "params": params})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            self.errors.append(f"console.{params['type']}: {' '.join(args)}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"log: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.call(method, params, self.session_id)

    async def goto(self, url: str, timeout_s: float = 60.0) -> None:
        seen = len(self.events)
        await self.call("Page.navigate", {"url": url})
        await self.wait_event("Page.loadEventFired", after=seen, timeout_s=timeout_s)

    async def wait_event(self, method: str, after: int = 0, timeout_s: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not any(e["method"] == method for e in self.events[after:]):
            if asyncio.get_running_loop().time() > deadline:
                raise BrowserError(f"no {method} within {timeout_s} s")
            await asyncio.sleep(0.05)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 60.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise BrowserError(f"{expression!r} still falsy after {timeout_s} s")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path, full_page: bool = True) -> bytes:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = await self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        data = base64.b64decode((await self.call("Page.captureScreenshot", params))["data"])
        await asyncio.to_thread(path.write_bytes, data)
        return data


class Browser:
    """One headless Chromium process and its DevTools connection."""

    def __init__(self, process: asyncio.subprocess.Process, ws: ClientConnection) -> None:
        self.process = process
        self.ws = ws
        self.stderr_tail: deque[str] = deque(maxlen=200)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if "id" in message:
                    future = self._pending.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif (page := self._pages.get(message.get("sessionId", ""))) is not None:
                    page.record(message["method"], message.get("params", {}))
        finally:
            # The connection is gone: nobody will answer the calls still waiting.
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrowserError("DevTools connection closed"))

    async def call(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self.ws.send(json.dumps(message))
        answer = await asyncio.wait_for(future, CALL_TIMEOUT_S)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def new_page(self, width: int, height: int, mobile: bool = False) -> Page:
        target = await self.call("Target.createTarget", {"url": "about:blank"})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        self._pages[page.session_id] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            await page.call(f"{domain}.enable")
        await page.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        return page


async def _drain(stream: asyncio.StreamReader, tail: deque[str]) -> None:
    async for line in stream:
        tail.append(line.decode(errors="replace").rstrip())


@contextlib.asynccontextmanager
async def launch() -> AsyncIterator[Browser]:
    """Start headless Chromium; stopped (and its profile deleted) on the way out."""
    profile = tempfile.mkdtemp(prefix="plug-chromium-")
    process = await asyncio.create_subprocess_exec(
        chromium_binary(),
        "--headless",
        "--no-sandbox",  # tests run as root (CI); the sandbox refuses root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--hide-scrollbars",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    tail: deque[str] = deque(maxlen=200)
    drain: asyncio.Task[None] | None = None
    try:
        url = await asyncio.wait_for(_devtools_url(process.stderr, tail), START_TIMEOUT_S)
        drain = asyncio.create_task(_drain(process.stderr, tail), name="chromium-stderr")
        async with connect(url, max_size=None, ping_interval=None) as ws:
            browser = Browser(process, ws)
            browser.stderr_tail = tail
            try:
                yield browser
            finally:
                browser._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await browser._reader
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_url(stderr: asyncio.StreamReader, tail: deque[str]) -> str:
    async for line in stderr:
        tail.append(line.decode(errors="replace").rstrip())
        found = _LISTENING.search(line)
        if found:
            return found.group(1).decode()
    raise BrowserError("chromium exited before listening:\n" + "\n".join(tail))
