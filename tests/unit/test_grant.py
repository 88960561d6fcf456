"""``plug-pipeline grant``: what it refuses before it connects to anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import cli
from pipeline.errors import ConfigError

URL = "postgresql://nobody@127.0.0.1:1/none"  # never reached: every case fails before


def grant(*args: str) -> None:
    """The command's function, without the console script's log set-up."""
    parsed = cli.build_parser().parse_args(["grant", *args])
    parsed.func(parsed)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--to", "plug.duckdb", "--tenant", "acme"], "DuckDB has no users"),
        (["--to", URL], "either --tenant or --revoke"),
        (["--to", URL, "--tenant", "acme", "--revoke"], "either --tenant or --revoke"),
        (["--to", URL, "--revoke", "--password-file", "p"], "goes with a grant"),
        (["--to", URL, "--tenant", "acme", "--password-file", "/nonexistent/p"], "cannot read"),
    ],
)
def test_grant_refuses_before_connecting(args: list[str], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        grant("--role", "acme_reader", *args)


def test_an_empty_password_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    empty = tmp_path / "password"
    empty.write_text("\nsecret-on-line-two\n")
    with pytest.raises(ConfigError, match="no password on its first line") as raised:
        grant("--role", "r", "--tenant", "acme", "--to", URL, "--password-file", str(empty))
    assert "secret-on-line-two" not in str(raised.value)
