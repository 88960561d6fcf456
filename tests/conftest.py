"""Fixtures every test folder shares, and the marks given by folder.

Helpers live in ``tests/support``; this file holds fixtures and hooks only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import Config
from tests.support import secrets
from tests.support.payloads import TOKENS

# Items under these folders need the local Kafka (and PostgreSQL, Chromium): `-m "not
# integration"` leaves them out whatever their file says.
_INTEGRATION = ("integration", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    folders = [Path(__file__).parent / name for name in _INTEGRATION]
    for item in items:
        if any(item.path.is_relative_to(folder) for folder in folders):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def nothing_leaked_into_logs() -> Iterator[None]:
    """At the end of the session, no line of any log its processes wrote holds a token, a
    customer's phone number or a message's text.

    A session fixture rather than a test ordered last: it runs after whatever tests were
    selected (``-k`` included), and a leak fails the session as an error at teardown.
    """
    yield
    secrets.assert_nothing_leaked()


@pytest.fixture
def config() -> Config:
    return Config(
        tokens={t: (k,) for t, k in TOKENS.items()}, max_body_bytes=64 * 1024, ack_timeout_s=2.0
    )
