"""Fixtures every test folder shares.

Helpers live in ``tests/support``; this file holds fixtures and hooks only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.config import Config
from tests.support import secrets
from tests.support.payloads import TOKENS


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_ingress_logs() -> Iterator[None]:
    """At the end of the session, every line of every ingress log it ran holds no token.

    A session fixture rather than a test ordered last: it runs after whatever tests were
    selected (``-k`` included), and a leak fails the session as an error at teardown.
    """
    yield
    secrets.assert_no_secret_logged()


@pytest.fixture
def config() -> Config:
    return Config(
        tokens={t: (k,) for t, k in TOKENS.items()}, max_body_bytes=64 * 1024, ack_timeout_s=2.0
    )
