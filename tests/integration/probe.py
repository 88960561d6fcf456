"""Reading a running ingress's /readyz figures, for tests that poll them."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson

from tests.integration.conftest import Ingress


def readyz(ingress: Ingress) -> dict[str, object]:
    try:
        with urllib.request.urlopen(ingress.url + "/readyz", timeout=5) as resp:
            figures: dict[str, object] = orjson.loads(resp.read())
            return figures
    except urllib.error.HTTPError as exc:
        return orjson.loads(exc.read())
    except OSError as exc:
        return {"status": f"unreachable: {exc}"}
