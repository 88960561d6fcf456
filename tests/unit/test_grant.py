"""``plug-pipeline grant``: what it refuses before it connects to anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import cli

URL = "postgresql://nobody@127.0.0.1:1/none"  # never reached: every case fails before


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
def test_grant_refuses_before_connecting(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["grant", "--role", "acme_reader", *args]) == cli.EXIT_CONFIG
    assert said in capsys.readouterr().err


def test_an_empty_password_file_is_refused_without_quoting_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "password"
    empty.write_text("\nsecret-on-line-two\n")
    args = ["grant", "--role", "r", "--tenant", "acme", "--to", URL, "--password-file", str(empty)]
    assert cli.main(args) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert "no password on its first line" in err
    assert "secret-on-line-two" not in err
