"""HTTPS served directly, certificates and tokens reloaded on SIGHUP, on the real broker.

Certificates are made here with trustme; clients are the standard library's HTTPS
client, verifying against the test CA as Plug verifies against the public ones.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import ssl
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from pipeline.webhooks import all_topics
from tests.support import kafka
from tests.support.ingress import Ingress, start_ingress, stop_ingress
from tests.support.payloads import fixture_bytes
from tests.support.secrets import NEW, OLD

TEXT = fixture_bytes("receive-message/text.json")
HANDSHAKE_S = 2.0


@dataclass
class Tls:
    ingress: Ingress
    cert: Path
    key: Path
    tokens: Path
    first_ca: trustme.CA

    @property
    def port(self) -> int:
        return int(self.ingress.url.rsplit(":", 1)[1])

    def issue(self, ca: trustme.CA) -> None:
        """Write a certificate for 127.0.0.1 signed by ``ca`` where the ingress reads it."""
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        leaf.private_key_pem.write_to_path(str(self.key))
        leaf.cert_chain_pems[0].write_to_path(str(self.cert))
        for pem in leaf.cert_chain_pems[1:]:
            pem.write_to_path(str(self.cert), append=True)

    def hup(self) -> None:
        self.ingress.process.send_signal(signal.SIGHUP)


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="module")
def tls(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    tmp = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    setup = Tls(None, tmp / "cert.pem", tmp / "key.pem", tmp / "tokens", ca)  # type: ignore[arg-type]
    setup.issue(ca)
    setup.tokens.write_text(f"acme={OLD}\n", encoding="utf-8")
    prefix = f"tls{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    setup.ingress = start_ingress(
        tmp,
        prefix,
        client_ssl=client_context(ca),
        PLUG_PIPELINE_TLS_CERT=str(setup.cert),
        PLUG_PIPELINE_TLS_KEY=str(setup.key),
        PLUG_PIPELINE_TOKENS_FILE=str(setup.tokens),
        PLUG_PIPELINE_TLS_HANDSHAKE_TIMEOUT_S=str(HANDSHAKE_S),
    )
    yield setup
    stop_ingress(setup.ingress)


def post(conn: http.client.HTTPSConnection, token: str) -> tuple[int, dict[str, str]]:
    conn.request(
        "POST",
        f"/webhooks/receive-message?token={token}",
        body=TEXT,
        headers={"Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def connect(tls: Tls, context: ssl.SSLContext) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", tls.port, context=context, timeout=10)


def until(what: str, check: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)  # polling the condition itself, with a deadline


def test_a_webhook_over_https_is_published(tls: Tls) -> None:
    conn = connect(tls, client_context(tls.first_ca))
    status, answer = post(conn, OLD)
    assert status == 200
    assert answer["status"] in {"published", "spooled"}
    assert conn.sock.version() in {"TLSv1.2", "TLSv1.3"}
    conn.close()


def test_tls_1_2_is_accepted_and_older_versions_refused(tls: Tls) -> None:
    twelve = client_context(tls.first_ca)
    twelve.maximum_version = ssl.TLSVersion.TLSv1_2
    conn = connect(tls, twelve)
    assert post(conn, OLD)[0] == 200
    assert conn.sock.version() == "TLSv1.2"
    conn.close()

    old = client_context(tls.first_ca)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated: the point here
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        post(connect(tls, old), OLD)
    assert tls.ingress.process.poll() is None


def test_a_client_that_never_completes_its_handshake_is_closed(tls: Tls) -> None:
    """asyncio would wait 60 s for a handshake; the ingress waits its own bound."""
    with socket.create_connection(("127.0.0.1", tls.port), timeout=HANDSHAKE_S + 10) as raw:
        started = time.monotonic()
        assert raw.recv(1024) == b""  # closed by the server, nothing sent
        # the bound, not an immediate refusal: the handshake deadline did it
        assert HANDSHAKE_S / 2 < time.monotonic() - started < HANDSHAKE_S + 3
    assert tls.ingress.process.poll() is None


def test_plain_http_on_the_tls_port_gets_no_answer_it_could_use(tls: Tls) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", tls.port, timeout=10)
    conn.request("GET", "/healthz")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        conn.getresponse()
    conn.close()


def test_tokens_rotate_without_downtime_and_certificates_reload_on_sighup(tls: Tls) -> None:
    """Add the new token, both work; drop the old; a renewed certificate serves new
    connections while an open one goes on."""
    first = client_context(tls.first_ca)
    kept = connect(tls, first)
    assert post(kept, OLD)[0] == 200
    assert post(kept, NEW)[0] == 401

    # rotation: the new token is added beside the old one
    tls.tokens.write_text(f"acme={OLD}\nacme={NEW}\n", encoding="utf-8")
    tls.hup()
    until("the new token is accepted", lambda: post(kept, NEW)[0] == 200)
    assert post(kept, OLD)[0] == 200

    # a tokens file that does not parse changes nothing
    tls.tokens.write_text("acme\n", encoding="utf-8")
    tls.hup()
    until("the bad file is reported", lambda: "tokens not reloaded" in tls.ingress.log.read_text())
    assert post(kept, OLD)[0] == 200
    assert post(kept, NEW)[0] == 200

    # the old token is removed once Plug calls with the new one
    tls.tokens.write_text(f"acme={NEW}\n", encoding="utf-8")
    tls.hup()
    until("the old token is refused", lambda: post(kept, OLD)[0] == 401)
    assert post(kept, NEW)[0] == 200

    # certbot renewed: a certificate from another CA, the same files, SIGHUP
    renewed = trustme.CA()
    tls.issue(renewed)
    tls.hup()

    def new_connections_get_the_new_certificate() -> bool:
        try:
            conn = connect(tls, client_context(renewed))
            ok = post(conn, NEW)[0] == 200
            conn.close()
            return ok
        except ssl.SSLError:
            return False

    until("new connections get the renewed certificate", new_connections_get_the_new_certificate)
    with pytest.raises(ssl.SSLCertVerificationError):
        post(connect(tls, first), NEW)
    # the connection opened before the reload was not dropped: had it been, the client
    # would reconnect and fail to verify the new certificate against the first CA
    sock_before = kept.sock
    assert post(kept, NEW)[0] == 200
    assert kept.sock is sock_before
    kept.close()
