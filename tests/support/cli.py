"""``plug-pipeline`` run as a user runs it: ``python -m pipeline`` in a child process."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

# Every log a command run by the suite wrote: the session's last step scans them for
# tokens and personal data (tests/support/secrets.py). A run's standard error is its log;
# its standard output is what the command answers (``tail`` prints events, by design).
COMMAND_LOGS: list[Path] = []
_RUNS = itertools.count()
_LOG_DIR = Path(tempfile.mkdtemp(prefix="plug-pipeline-command-logs-"))
atexit.register(shutil.rmtree, _LOG_DIR, True)  # after the session's scan


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


# The loader keeps customers' phones and names as they came unless a test says otherwise
# (``env``): most tests compare what the warehouse holds with the events they sent. The
# privacy tests set a policy and keys of their own.
DEFAULTS = {"PLUG_PIPELINE_PRIVACY_POLICY": "keep"}


def environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """The test process's environment with ``env`` on top (``DEFAULTS`` below both)."""
    return {**DEFAULTS, **os.environ, **(env or {})}


def run(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run to the end; the exit status is the caller's to check, with the output captured."""
    result = subprocess.run(
        command(*args),
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    log = _LOG_DIR / f"{next(_RUNS):04d}-{args[0] if args else 'none'}.log"
    log.write_text(result.stderr)
    COMMAND_LOGS.append(log)
    return result


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start(
    *args: str, log: Path, env: Mapping[str, str] | None = None, wrap: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Start in the background, stdout and stderr appended to ``log``; ``wrap``: words
    before the command (``ip netns exec NS``: on a test network's host)."""
    COMMAND_LOGS.append(log)
    with log.open("ab") as out:
        argv = [*wrap, *command(*args)]
        return subprocess.Popen(argv, env=environment(env), stdout=out, stderr=out)
