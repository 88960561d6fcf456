"""A small client for Plug's integrations API (``update-webhooks``).

::

    PipelineError
    └── PlugApiError           the call to Plug did not succeed; ``retriable`` says
        ├── PlugRefused        Plug answered, but not with 2xx (status, body, explanation)
        └── PlugUnreachable    no answer: connection failure or timeout
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import ClassVar

import aiohttp
import msgspec

from pipeline import __version__
from pipeline.errors import PipelineError
from pipeline.webhooks import Webhook

UPDATE_WEBHOOKS_PATH = "/api/integrations/update-webhooks"
USER_AGENT = f"plug-pipeline/{__version__}"

# Enough of an error body to see what Plug complained about, never a whole HTML page.
_BODY_READ_LIMIT = 64 * 1024
_BODY_SHOWN_CHARS = 200


class PlugApiError(PipelineError):
    """The call to Plug's API did not succeed."""

    reason = "plug_api"
    retriable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.attempts = 1


class PlugRefused(PlugApiError):
    """Plug answered with a status other than 2xx."""

    reason = "plug_refused"

    def __init__(self, status: int, body: str, explanation: str) -> None:
        super().__init__(explanation)
        # Plug's answer, not an HTTP status this pipeline would answer with.
        self.status = status
        self.body = body
        self.explanation = explanation
        # A 4xx says the request itself is wrong: sending it again cannot help.
        self.retriable = status >= 500


class PlugUnreachable(PlugApiError):
    """Plug could not be reached, or did not answer in time."""

    reason = "plug_unreachable"

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


def update_webhooks_body(urls: Mapping[Webhook, str]) -> dict[str, str]:
    """Plug's request body: all seven fields, in the order of Plug's documentation."""
    missing = [webhook.value for webhook in Webhook if webhook not in urls]
    if missing:
        raise ValueError(f"no URL for webhooks: {', '.join(missing)}")
    return {webhook.plug_field: urls[webhook] for webhook in Webhook}


def summarise_body(body: str) -> str:
    """One short printable line of a response body."""
    # Plug's body ends up on a terminal: control characters must not reach it.
    text = " ".join("".join(c if c.isprintable() else " " for c in body).split())
    if not text:
        return "(empty body)"
    if len(text) > _BODY_SHOWN_CHARS:
        return text[:_BODY_SHOWN_CHARS] + "..."
    return text


def explain(status: int, body: str, location: str | None = None) -> str:
    """Plug's documented meaning of a status, in plain words."""
    if status == 401:
        return (
            "Plug refused the API token (HTTP 401): the Authorization header is missing "
            "or the token is not valid"
        )
    if status == 405:
        return (
            "Plug did not accept the HTTP method (HTTP 405): update-webhooks must be "
            "called with PUT"
        )
    if status == 415:
        return (
            "Plug did not accept the request's Content-Type (HTTP 415): the body must be "
            "sent as application/json"
        )
    if 300 <= status < 400:
        target = summarise_body(location) if location else "nowhere"
        return (
            f"Plug answered with a redirect (HTTP {status}) to {target}: point PLUG_API_URL "
            "at the address it names"
        )
    if status >= 500:
        return f"Plug failed with a server error (HTTP {status}): {summarise_body(body)}"
    return f"Plug refused the request (HTTP {status}): {summarise_body(body)}"


class PlugApi:
    """Plug's integrations API for one company, identified by its API token.

    The session is the caller's: it decides the connection pool and its lifetime.
    """

    # Class attributes rather than arguments: only tests need to send a wrong request.
    _method: ClassVar[str] = "PUT"
    _content_type: ClassVar[str] = "application/json"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 10.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._attempts = attempts
        self._backoff_s = backoff_s

    @property
    def update_webhooks_url(self) -> str:
        return self._base_url + UPDATE_WEBHOOKS_PATH

    async def update_webhooks(self, urls: Mapping[Webhook, str]) -> None:
        """Point the seven webhooks at ``urls``; retries what a retry can fix."""
        body = msgspec.json.encode(update_webhooks_body(urls))
        for attempt in range(1, self._attempts + 1):
            try:
                await self._send(self.update_webhooks_url, body)
            except PlugApiError as exc:
                # The PUT is idempotent, so sending it again after a lost answer is safe.
                if not exc.retriable or attempt == self._attempts:
                    exc.attempts = attempt
                    raise
            else:
                return
            await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))

    async def _send(self, url: str, body: bytes) -> None:
        headers = {
            # Plug expects the bare token, with no "Bearer" scheme in front of it.
            "Authorization": self._token,
            "Content-Type": self._content_type,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            async with self._session.request(
                self._method,
                url,
                data=body,
                headers=headers,
                timeout=self._timeout,
                # Following a redirect would resend the token to wherever it points.
                allow_redirects=False,
            ) as response:
                if 200 <= response.status < 300:
                    return
                raw = await response.content.read(_BODY_READ_LIMIT)
                text = raw.decode(response.charset or "utf-8", errors="replace")
                location = response.headers.get("Location")
                raise PlugRefused(response.status, text, explain(response.status, text, location))
        except aiohttp.InvalidURL as exc:
            raise PlugUnreachable(f"invalid Plug API URL {url}", retriable=False) from exc
        except aiohttp.ClientSSLError as exc:
            # A certificate problem does not go away by asking again.
            raise PlugUnreachable(f"TLS failed with {url}: {exc}", retriable=False) from exc
        except TimeoutError as exc:
            raise PlugUnreachable(
                f"Plug did not answer within {self._timeout.total:g} s at {url}"
            ) from exc
        except aiohttp.ClientError as exc:
            raise PlugUnreachable(
                f"cannot reach Plug at {url}: {exc or type(exc).__name__}"
            ) from exc
