"""What no log line may hold, and the scan of every log a session's processes wrote.

Tokens and customers' personal data: the ingress, the loader and every command run by
the suite log into files (tests/support/ingress.py, tests/support/cli.py), and the
session's last step reads them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tests.support import personal
from tests.support.cli import COMMAND_LOGS
from tests.support.ingress import INGRESS_LOGS
from tests.support.payloads import TOKENS

# The tokens a rotation test swaps in and out through a tokens file and SIGHUP.
OLD, NEW = "rotation-old-token-0f3a", "rotation-new-token-9c1d"
# A token no tenant has: the ingress refuses it, and must not log it while refusing.
WRONG = "wrong-token-that-must-not-be-logged-7e2b"
# The secret part of the alert tests' webhook URL (as in a Slack URL): never logged.
HOOK_PATH = "hooks/alerts-path-that-must-not-be-logged-5d2c"
SECRETS = [*TOKENS.values(), OLD, NEW, WRONG, HOOK_PATH]


def scan(logs: Iterable[Path]) -> tuple[int, list[str]]:
    """(lines read, ``file:line: what`` of every line holding a secret or personal data)."""
    lines = 0
    leaks: list[str] = []
    for log in logs:
        if not log.exists():
            continue  # a command that never started wrote nothing
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            lines += 1
            leaks += [f"{log.name}:{number}: a token" for secret in SECRETS if secret in line]
            kind = personal.in_line(line)
            if kind is not None:
                leaks.append(f"{log.name}:{number}: {kind}")
    return lines, leaks


def assert_nothing_leaked() -> None:
    """Every ingress the session started logged something; no log line holds a token, a
    customer's phone or a message's text.

    A session that started no process (the unit tests alone) has nothing to read.
    """
    if INGRESS_LOGS:
        lines, _ = scan(INGRESS_LOGS)
        assert lines > 0, f"{len(INGRESS_LOGS)} ingress logs, all empty"
    _, leaks = scan([*INGRESS_LOGS, *COMMAND_LOGS])
    assert leaks == [], f"leaked into logs: {leaks[:20]}"
