"""The tokens no log line may hold, and the scan of every ingress log a session wrote."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tests.support.ingress import INGRESS_LOGS
from tests.support.payloads import TOKENS

# The tokens a rotation test swaps in and out through a tokens file and SIGHUP.
OLD, NEW = "rotation-old-token-0f3a", "rotation-new-token-9c1d"
# A token no tenant has: the ingress refuses it, and must not log it while refusing.
WRONG = "wrong-token-that-must-not-be-logged-7e2b"
SECRETS = [*TOKENS.values(), OLD, NEW, WRONG]


def scan(logs: Iterable[Path]) -> tuple[int, list[str]]:
    """(lines read, ``file:line`` of every line holding a secret)."""
    lines = 0
    leaks: list[str] = []
    for log in logs:
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            lines += 1
            leaks += [f"{log.name}:{number}" for secret in SECRETS if secret in line]
    return lines, leaks


def assert_no_secret_logged() -> None:
    """Every ingress the session started logged something, and no line holds a token.

    A session that started no ingress (the unit tests alone) has nothing to read.
    """
    if not INGRESS_LOGS:
        return
    lines, leaks = scan(INGRESS_LOGS)
    assert lines > 0, f"{len(INGRESS_LOGS)} ingress logs, all empty"
    assert leaks == [], f"tokens in logs at {leaks}"
