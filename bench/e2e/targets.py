"""The servers measured (the ingress, the HTTP ceiling, the hand-written service, the Go
peer) and how each is started, probed and stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.common import BENCH, ROOT, log
from bench.e2e.broker import BOOTSTRAP
from bench.e2e.settings import BODIES, CLIENT_CPU, SERVER_CPU

VENV_BIN = Path(sys.executable).parent
TOKEN = "bench-token"
TENANT = "bench"
PREFIX = "bench"
PORTS = {
    "ingress": 18080,
    "ceiling": 18081,
    "handwritten": 18082,
    "ingress-workers": 18083,
    "gopeer": 18084,
}


@dataclass
class Target:
    name: str
    label: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    topic_prefix: str | None  # None: nothing goes to Kafka
    cpus: str = SERVER_CPU

    def path(self, body: str) -> str:
        return f"/webhooks/{BODIES[body][0]}?token={TOKEN}"

    def url(self, body: str) -> str:
        return f"http://127.0.0.1:{self.port}{self.path(body)}"

    def topics(self, body: str) -> list[str]:
        if self.topic_prefix is None:
            return []
        topics = [f"{self.topic_prefix}.{BODIES[body][1]}"]
        if self.name.startswith("ingress"):
            topics.append(f"{self.topic_prefix}.deadletter")
        return topics


class Server:
    def __init__(self, target: Target, logfile: Path) -> None:
        self.target = target
        self.logfile = logfile
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        t = self.target
        with contextlib.suppress(OSError):
            self.logfile.unlink()
        out = self.logfile.open("ab")
        self.proc = subprocess.Popen(
            ["taskset", "-c", t.cpus, *t.cmd],
            env=t.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a stuck server is killed whole
        )
        out.close()
        url = f"http://127.0.0.1:{t.port}{t.ready_path}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{t.name} exited at start-up; see {self.logfile}")
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(url, timeout=2) as r,
            ):
                if r.status == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{t.name} not ready at {url} after 60 s; see {self.logfile}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # graceful: finish in flight, flush the producer
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            log(f"{self.target.name} did not stop on SIGINT; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def __exit__(self, *exc: object) -> None:
        self.stop()


def probe(target: Target, body_file: Path, body: str) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    data = body_file.read_bytes()
    req = urllib.request.Request(target.url(body), data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def serve_supports_workers() -> bool:
    out = subprocess.run(
        [str(VENV_BIN / "plug-pipeline"), "serve", "--help"], capture_output=True, text=True
    )
    return "--workers" in out.stdout


def base_env() -> dict[str, str]:
    """The servers' environment: the caller's, less the ingress's and Kafka's settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLUG_PIPELINE_", "KAFKA_"))}
    base["PYTHONUNBUFFERED"] = "1"
    return base


def gopeer_target(binary: Path) -> Target:
    """The Go peer (bench/baselines/gopeer/, built by bench/e2e/gopeer.py) on one core:
    ``GOMAXPROCS=1``, as the Python servers run one event loop."""
    port = PORTS["gopeer"]
    cmd = [str(binary), "-port", str(port), "-bootstrap", BOOTSTRAP]
    env = dict(base_env(), GOMAXPROCS="1", GOPEER_TOKEN=TOKEN, GOPEER_TOPIC_PREFIX="gopeer")
    label = "Go net/http+encoding/json+franz-go ProduceSync"
    return Target("gopeer", label, cmd, env, port, "/healthz", "gopeer")


def make_targets(workers: int) -> tuple[dict[str, Target], list[str]]:
    base = base_env()
    ingress_env = dict(
        base,
        KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP,
        PLUG_PIPELINE_TOKENS=f"{TENANT}={TOKEN}",
        PLUG_PIPELINE_HOST="127.0.0.1",
        PLUG_PIPELINE_PORT=str(PORTS["ingress"]),
        PLUG_PIPELINE_TOPIC_PREFIX=PREFIX,
    )
    # Linger and compression are the ingress's defaults unless the caller sets them.
    for key in ("PLUG_PIPELINE_LINGER_MS", "PLUG_PIPELINE_COMPRESSION"):
        if key in os.environ:
            ingress_env[key] = os.environ[key]
    serve = [str(VENV_BIN / "plug-pipeline"), "serve"]
    baselines = BENCH / "baselines"
    ceiling = [sys.executable, str(baselines / "ceiling.py"), "--port", str(PORTS["ceiling"])]
    handwritten = [sys.executable, str(baselines / "handwritten.py")]
    handwritten += ["--port", str(PORTS["handwritten"]), "--bootstrap-servers", BOOTSTRAP]
    handwritten_env = dict(base, HANDWRITTEN_TOKEN=TOKEN, HANDWRITTEN_TOPIC_PREFIX="handwritten")
    targets = {
        "ingress": Target(
            "ingress",
            "plug-pipeline serve",
            serve,
            ingress_env,
            PORTS["ingress"],
            "/readyz",
            PREFIX,
        ),
        "ceiling": Target(
            "ceiling", "aiohttp ceiling", ceiling, base, PORTS["ceiling"], "/healthz", None
        ),
        "handwritten": Target(
            "handwritten",
            "FastAPI+pydantic+send_and_wait",
            handwritten,
            handwritten_env,
            PORTS["handwritten"],
            "/healthz",
            "handwritten",
        ),
    }
    notes = []
    if workers > 1:
        if serve_supports_workers():
            env = dict(ingress_env, PLUG_PIPELINE_PORT=str(PORTS["ingress-workers"]))
            cpus = ",".join(str(i) for i in range(min(workers, os.cpu_count() or 1)))
            targets["ingress-workers"] = Target(
                "ingress-workers",
                f"plug-pipeline serve --workers {workers}",
                [*serve, "--workers", str(workers)],
                env,
                PORTS["ingress-workers"],
                "/readyz",
                PREFIX,
                cpus=cpus,
            )
            if workers >= 2:
                notes.append(
                    f"`--workers {workers}` row: server on CPUs {cpus}, so it shares CPU "
                    f"{CLIENT_CPU} with the load generator; compare with care."
                )
        else:
            notes.append(
                f"`--workers {workers}` row skipped: `plug-pipeline serve --help` has no "
                "`--workers` option yet."
            )
    return targets, notes
