"""doctor's local checks: TLS certificate days left, the spool directory, the warehouse."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from pipeline.config import Config
from pipeline.ops.doctor import check_alerts, check_spool, check_tls, check_warehouse
from tests.support.alerts import alerts_file


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate valid for 30 days, made by the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-subj", "/CN=ingress.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


def test_tls_days_left_ok_then_warn_then_fail(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    config = Config(tls_cert=cert, tls_key=key)
    day = 86400
    now = time.time()
    fresh = check_tls(config, now=now)
    assert fresh.status == "ok"
    assert "valid for 29 more days" in fresh.detail or "valid for 30 more days" in fresh.detail
    assert check_tls(config, now=now + 25 * day).status == "warn"
    expired = check_tls(config, now=now + 31 * day)
    assert expired.status == "fail"
    assert "expired" in expired.detail


def test_tls_key_that_does_not_load_fails(certificate: tuple[str, str], tmp_path: Path) -> None:
    cert, _key = certificate
    bad_key = tmp_path / "key.pem"
    bad_key.write_text("not a key")
    assert check_tls(Config(tls_cert=cert, tls_key=str(bad_key))).status == "fail"


def test_spool_under_a_file_fails_and_a_folder_passes(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    failed = check_spool(Config(spool_dir=str(blocker / "spool")))
    assert failed.status == "fail"
    assert "not writable" in failed.detail
    assert check_spool(Config(spool_dir=str(tmp_path / "spool"))).status == "ok"
    assert check_spool(Config(spool_dir=None)).status == "warn"


def test_warehouse_without_a_server_fails(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        assert check_warehouse(f"postgresql://u@127.0.0.1:{port}/db", 2).status == "fail"
    assert check_warehouse(str(tmp_path / "w.duckdb"), 2).status == "ok"
    assert check_warehouse(str(tmp_path / "missing" / "w.duckdb"), 2).status == "fail"


def test_alerts_checked_when_a_file_is_set(tmp_path: Path) -> None:
    assert check_alerts(Config()) is None
    path = alerts_file(tmp_path, hook_port=9, smtp_port=9, repeat_minutes=1)
    ok = check_alerts(Config(alerts_file=str(path)))
    assert ok is not None
    assert (ok.status, ok.detail) == (
        "ok",
        "1 rule(s), 2 receiver(s); `alerts test` tries the receivers",
    )
    (tmp_path / "alerts-state.json").write_text("[]")
    broken = check_alerts(Config(alerts_file=str(path)))
    assert broken is not None
    assert broken.status == "fail"
    assert "alerts-state.json: not a state this version reads" in broken.detail
    missing = check_alerts(Config(alerts_file=str(tmp_path / "none.toml")))
    assert missing is not None
    assert missing.status == "fail"
    assert "none.toml: cannot read it" in missing.detail
