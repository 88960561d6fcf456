"""Plug payloads on disk (``tests/fixtures/plug``) and the tenants' tokens.

The one place that knows where the fixtures live; every test reads them through here.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plug"
TOKENS = {"acme": "acme-secret-token", "globex": "globex-secret-token"}
# The wallboard's viewer tokens (plug-pipeline live): never a webhook token.
VIEWERS = {"acme": "acme-viewer-token", "globex": "globex-viewer-token"}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def corpus_files() -> list[Path]:
    """Every documentation payload, filed under its webhook's URL name.

    Never empty: a missing or moved fixtures folder fails here instead of letting every
    loop over the corpus pass on nothing.
    """
    files = sorted(p for p in FIXTURES.glob("*/*.json") if p.parent.name != "seed")
    assert files, f"no payloads under {FIXTURES}"
    return files
