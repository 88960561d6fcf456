"""Sending one notification: a JSON POST to an incoming webhook, or an e-mail over SMTP.

A sender either returns (the receiver took it) or raises ``DeliveryFailed`` whose
``retriable`` says whether trying again may help: a connection refused, a timeout, an
HTTP 408, 429 or 5xx, an SMTP 4xx may pass later; any other refusal will not. The reason
carried is a status or an exception's class name, never its text: aiohttp's messages
can hold the URL, and a webhook URL is a secret.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import aiohttp

from pipeline.live.alerts.message import iso
from pipeline.live.alerts.rules import EmailReceiver, Receiver, WebhookReceiver
from pipeline.live.alerts.settings import Secrets
from pipeline.live.alerts.state import Notification
from pipeline.live.alerts.template import render

_RETRIABLE_HTTP = frozenset({408, 425, 429})


class DeliveryFailed(Exception):
    def __init__(self, reason: str, *, retriable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retriable = retriable
        self.retry_after_s = retry_after_s  # the receiver's own Retry-After, when it gave one


class Sender(Protocol):
    """What an outbox needs of a receiver."""

    name: str

    async def send(self, note: Notification) -> None: ...

    async def close(self) -> None: ...


def body(note: Notification, template: str | None) -> bytes:
    """The webhook's JSON: ``{"text": ...}`` unless the receiver has a template."""
    if template is None:
        return json.dumps({"text": note.text}, ensure_ascii=False).encode()
    values = {
        "text": note.text,
        "state": note.state,
        "rule": note.rule,
        "kind": note.kind,
        "tenant": note.tenant,
        "subject": note.subject,
        "since": iso(note.since),
        "at": iso(note.at),
        "id": note.id,
    }
    return render(template, values).encode()


class WebhookSender:
    def __init__(self, receiver: WebhookReceiver, url: str, timeout_s: float) -> None:
        self.name = receiver.name
        self._url = url
        self._template = receiver.template
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, note: Notification) -> None:
        if self._session is None:  # made on the loop that sends
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                self._url,
                data=body(note, self._template),
                # the same id on a resend after a crash: a receiver of ours can drop it
                headers={"Content-Type": "application/json; charset=utf-8", "X-Alert-Id": note.id},
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
                retry_after = _seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryFailed(type(exc).__name__, retriable=True) from None
        if 200 <= status < 300:
            return
        retriable = status >= 500 or status in _RETRIABLE_HTTP
        raise DeliveryFailed(f"HTTP {status}", retriable=retriable, retry_after_s=retry_after)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds (its HTTP-date form is not worth a parser here)."""
    if retry_after is None:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86400 else None


class EmailSender:
    """smtplib in a thread: one connection per message (alerts are few; no idle socket)."""

    def __init__(self, receiver: EmailReceiver, password: str | None, timeout_s: float) -> None:
        self.name = receiver.name
        self._receiver = receiver
        self._password = password
        self._timeout_s = timeout_s

    async def send(self, note: Notification) -> None:
        message = EmailMessage()
        message["Subject"] = note.title
        message["From"] = self._receiver.sender
        message["To"] = ", ".join(self._receiver.to)
        message["Date"] = formatdate(note.queued, localtime=False)
        # the same id on a resend after a crash: mail clients show one message
        message["Message-ID"] = f"<{note.id}@plug-pipeline.alerts>"
        message["X-Plug-Alert"] = f"{note.state}; rule={note.rule}; tenant={note.tenant}"
        message.set_content(note.text)
        try:
            await asyncio.to_thread(self._send, message)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP {exc.smtp_code}", retriable=exc.smtp_code < 500) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryFailed("SMTP recipients refused", retriable=False) from None
        except (smtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryFailed(type(exc).__name__, retriable=True) from None

    def _send(self, message: EmailMessage) -> None:
        r = self._receiver
        smtp: smtplib.SMTP
        context = ssl.create_default_context(cafile=r.ca_file)  # verifies the host name
        if r.tls:
            smtp = smtplib.SMTP_SSL(r.host, r.port, timeout=self._timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(r.host, r.port, timeout=self._timeout_s)
        with smtp:
            if r.starttls:
                smtp.starttls(context=context)
            if r.username is not None and self._password is not None:
                smtp.login(r.username, self._password)
            smtp.send_message(message)

    async def close(self) -> None:
        return None


def sender(receiver: Receiver, secrets: Secrets, timeout_s: float) -> Sender:
    if isinstance(receiver, WebhookReceiver):
        assert secrets.url is not None  # settings.load read it
        return WebhookSender(receiver, secrets.url, timeout_s)
    return EmailSender(receiver, secrets.password, timeout_s)
