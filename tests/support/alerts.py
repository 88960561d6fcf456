"""What the alert tests share: a condition polled to a deadline, a fake sender, an alerts
file written from parts, and real local receivers (an aiohttp server, an aiosmtpd server)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web

from pipeline.live.alerts.deliver import DeliveryFailed
from pipeline.live.alerts.state import Notification
from tests.support.secrets import HOOK_PATH


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> float:
    """Poll until ``condition()`` holds; the seconds it took. Fails past the deadline."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        if loop.time() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s} s")
        await asyncio.sleep(0.005)
    return loop.time() - start


class FakeSender:
    """Takes notifications; ``down`` makes it fail (retriable), ``refuse`` for good."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Notification] = []
        self.attempts = 0
        self.down = False
        self.refuse = False
        self.closed = False

    async def send(self, note: Notification) -> None:
        self.attempts += 1
        if self.refuse:
            raise DeliveryFailed("HTTP 400", retriable=False)
        if self.down:
            raise DeliveryFailed("ConnectionRefusedError", retriable=True)
        self.sent.append(note)

    async def close(self) -> None:
        self.closed = True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def alerts_file(folder: Path, *, hook_port: int, smtp_port: int, repeat_minutes: float) -> Path:
    """An alerts file with one webhook, one e-mail receiver and a disconnection rule,
    backoff short enough for a test (a real one would start at a second)."""
    path = folder / "alerts.toml"
    path.write_text(
        f"""\
state_file = "alerts-state.json"
time_zone = "America/Sao_Paulo"

[delivery]
initial_backoff_seconds = 0.05
max_backoff_seconds = 0.2
timeout_seconds = 2

[[receivers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{hook_port}/{HOOK_PATH}"

[[receivers]]
name = "mail"
kind = "email"
host = "127.0.0.1"
port = {smtp_port}
from = "alerts@example.invalid"
to = ["supervisors@example.invalid"]

[[rules]]
name = "number-down"
kind = "instance_disconnected"
tenant = "acme"
repeat_minutes = {repeat_minutes}
""",
        encoding="utf-8",
    )
    return path


class HookReceiver:
    """A real HTTP server standing for Slack: keeps each JSON body; can be stopped and
    started again on the same port (a receiver that is down for a while)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bodies: list[dict[str, Any]] = []
        self.answer = 200  # what it answers; the body is kept only on a 2xx
        self.refused = 0
        self._runner: web.AppRunner | None = None

    async def _take(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if self.answer >= 300:
            self.refused += 1
            return web.Response(status=self.answer, text="no")
        self.bodies.append(body)
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(f"/{HOOK_PATH}", self._take)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def texts(self) -> list[str]:
        return [str(b["text"]) for b in self.bodies]


class MailReceiver:
    """A real SMTP server (aiosmtpd, in its own thread) keeping each message."""

    def __init__(
        self,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        """``tls``: offer STARTTLS and require it; ``login``: require this user and password."""
        from aiosmtpd.controller import Controller

        self.port = port
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []  # the users that logged in
        self._login = login
        extra: dict[str, Any] = {}
        if tls is not None:
            extra |= {"tls_context": tls, "require_starttls": True}
        if login is not None:
            extra |= {"authenticator": self._authenticate, "auth_required": True}
        self._controller = Controller(self, hostname="127.0.0.1", port=port, **extra)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult

        given = (data.login.decode(), data.password.decode())
        if given != self._login:
            return AuthResult(success=False, handled=False)
        self.logins.append(given[0])
        return AuthResult(success=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]
