"""Shared fixtures: payload files and a config with two tenants."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Config

FIXTURES = Path(__file__).parent / "fixtures" / "plug"
TOKENS = {"acme": "acme-secret-token", "globex": "globex-secret-token"}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def corpus_files() -> list[Path]:
    """Every documentation payload, filed under its webhook's URL name."""
    return sorted(p for p in FIXTURES.glob("*/*.json") if p.parent.name != "seed")


@pytest.fixture
def config() -> Config:
    return Config(
        tokens={t: (k,) for t, k in TOKENS.items()}, max_body_bytes=64 * 1024, ack_timeout_s=2.0
    )
