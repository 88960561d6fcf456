"""Reading a running ingress's /readyz figures, for tests that poll them."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson

from tests.support.ingress import Ingress


def readyz(ingress: Ingress) -> dict[str, object]:
    try:
        with urllib.request.urlopen(ingress.url + "/readyz", timeout=5) as resp:
            figures: dict[str, object] = orjson.loads(resp.read())
            return figures
    except urllib.error.HTTPError as exc:
        answer: dict[str, object] = orjson.loads(exc.read())
        return answer
    except OSError as exc:
        return {"status": f"unreachable: {exc}"}


def post(ingress: Ingress, webhook: str, body: bytes) -> tuple[int, dict[str, object]]:
    """POST one webhook as tenant acme: (status, JSON answer)."""
    request = urllib.request.Request(
        ingress.webhook_url(webhook), data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            ok: dict[str, object] = orjson.loads(resp.read())
            return resp.status, ok
    except urllib.error.HTTPError as exc:
        refused: dict[str, object] = orjson.loads(exc.read())
        return exc.code, refused
