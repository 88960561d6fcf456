"""A real ingress (``plug-pipeline serve`` as a subprocess) on the real local Kafka."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import cli, kafka
from tests.support.payloads import TOKENS

# Every ingress log this session wrote: the session-end secrets check reads them all.
INGRESS_LOGS: list[Path] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Ingress:
    """A running ``plug-pipeline serve`` process."""

    url: str
    prefix: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    client_ssl: ssl.SSLContext | None = None  # trusts the test CA when the ingress is HTTPS

    def webhook_url(self, event: str, tenant: str = "acme") -> str:
        return f"{self.url}/webhooks/{event}?token={TOKENS[tenant]}"

    def topic(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(
                self.url + path, timeout=5, context=self.client_ssl
            ) as resp:
                status: int = resp.status
                return status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0


def start_ingress(
    tmp: Path,
    prefix: str,
    bootstrap: str = kafka.BOOTSTRAP,
    ready: bool = True,
    port: int | None = None,
    client_ssl: ssl.SSLContext | None = None,
    extra_env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    wrap: Sequence[str] = (),
    **env: str,
) -> Ingress:
    """``host``: the address it listens on; ``wrap``: words before the command (``ip
    netns exec NS``: on a test network's host, listening on its address)."""
    port = port or free_port()
    log = tmp / f"ingress-{port}.log"
    INGRESS_LOGS.append(log)
    full_env = {
        "PLUG_PIPELINE_TOKENS": ",".join(f"{t}={k}" for t, k in TOKENS.items()),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PLUG_PIPELINE_HOST": host,
        "PLUG_PIPELINE_PORT": str(port),
        "PLUG_PIPELINE_TOPIC_PREFIX": prefix,
        "PLUG_PIPELINE_SPOOL_DIR": str(tmp / f"spool-{port}"),
        **(extra_env or {}),
        **env,
    }
    process = cli.start("serve", log=log, env=full_env, wrap=wrap)
    given = {**(extra_env or {}), **env}
    scheme = "https" if "PLUG_PIPELINE_TLS_CERT" in given else "http"
    ingress = Ingress(f"{scheme}://{host}:{port}", prefix, process, log, given, client_ssl)
    wanted = "/readyz" if ready else "/healthz"
    deadline = time.monotonic() + 60
    while ingress.status(wanted) != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            stop_ingress(ingress)
            raise RuntimeError(f"ingress did not become ready:\n{log.read_text()}")
        time.sleep(0.05)  # polling for readiness: the loop exits on the condition itself
    return ingress


def stop_ingress(ingress: Ingress) -> None:
    cli.stop(ingress.process)
