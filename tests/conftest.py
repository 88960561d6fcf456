"""Fixtures every test folder shares. Helpers live in ``tests/support``."""

from __future__ import annotations

import pytest

from pipeline.config import Config
from tests.support.payloads import TOKENS


@pytest.fixture
def config() -> Config:
    return Config(
        tokens={t: (k,) for t, k in TOKENS.items()}, max_body_bytes=64 * 1024, ack_timeout_s=2.0
    )
