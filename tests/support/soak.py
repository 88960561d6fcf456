"""The whole chain under a long, mixed, seeded random sequence of faults, then a count.

webhook -> ingress -> Kafka (three brokers, RF 3, min ISR 2) -> loader -> PostgreSQL, each
on its own host of a test network (tests/support/testnet.py), with several tenants'
traffic at a steady rate from the test's own host. Faults start at random moments and
overlap at times: partitions (the ingress from every broker, one broker from the others,
the loader from PostgreSQL or from Kafka), loss, delay and reordering on the ingress's
link, kill -9 and SIGTERM of the ingress, of each broker, of the loader, and PostgreSQL
crashed or stopped.
Faults on the same host or process take turns; at most one broker is down at once.

At the end everything is healed, the spool drains and the loader catches up; then every
acknowledged ``event_id`` must be in Kafka (per key in order) and exactly once in the
warehouse. One table says what happened; the seed replays it:

    make soak SOAK_MINUTES=60 [SOAK_SEED=1234]
    python -m tests.support.soak --minutes 5 --seed 1234
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from pipeline.runtime.metrics import samples
from pipeline.webhooks import all_topics
from tests.support import cli, kafka, secrets
from tests.support.brokers import NetKafka
from tests.support.ingress import Ingress, start_ingress, stop_ingress
from tests.support.load import Load, run_load, verify
from tests.support.probe import readyz
from tests.support.testnet import TestNet

BROKERS = ("k1", "k2", "k3")
HOSTS = ("ingress", *BROKERS, "loader", "pg")
TENANTS = {f"tenant{i}": f"soak-token-{i}-{uuid.uuid4().hex[:12]}" for i in range(1, 5)}
PG_SCRIPT = Path(__file__).parents[2] / "deploy" / "postgres-local" / "pg-local.sh"
INGRESS_PORT = 8080
LOADER_METRICS_PORT = 9400
RECOVERY_BOUND_S = 180.0  # longer than this: reported as not recovered


@dataclass
class Fault:
    name: str
    started: float  # seconds since the soak's start
    lasted: float = 0.0
    recovered_s: float | None = None  # from its end until the chain was whole again


@dataclass
class Outcome:
    seed: int
    minutes: float
    faults: list[Fault]
    acked: int
    lost_kafka: int
    duplicates_kafka: int
    out_of_order: int
    lost_warehouse: int
    doubled_warehouse: int
    answers: Counter[str]
    died: list[str] = field(default_factory=list)  # processes that ended by themselves
    leaks: list[str] = field(default_factory=list)  # log lines with a token or personal data

    @property
    def errors_5xx(self) -> int:
        return sum(n for said, n in self.answers.items() if said.startswith("5"))

    @property
    def ok(self) -> bool:
        return (
            not (
                self.lost_kafka
                or self.out_of_order
                or self.lost_warehouse
                or self.doubled_warehouse
            )
            and not (self.died or self.leaks)
            and all(f.recovered_s is not None for f in self.faults)
        )

    def table(self) -> str:
        lines = [
            f"soak: seed {self.seed}, {self.minutes:g} minutes, {len(self.faults)} faults",
            f"{'fault':<34} {'at s':>7} {'lasted s':>9} {'recovered in s':>15}",
        ]
        for f in self.faults:
            rec = "not recovered" if f.recovered_s is None else f"{f.recovered_s:.1f}"
            lines.append(f"{f.name:<34} {f.started:>7.0f} {f.lasted:>9.1f} {rec:>15}")
        by_kind = Counter(f.name.split(" ")[0] for f in self.faults)
        recovered = [f.recovered_s for f in self.faults if f.recovered_s is not None]
        lines += [
            "faults by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())),
            f"recovery: median {_median(recovered):.1f} s, max {max(recovered, default=0):.1f} s",
            f"webhooks acknowledged          {self.acked}",
            f"lost (not in Kafka)            {self.lost_kafka}",
            f"out of order (per key)         {self.out_of_order}",
            f"lost (not in the warehouse)    {self.lost_warehouse}",
            f"doubled (in the warehouse)     {self.doubled_warehouse}",
            f"5xx answered                   {self.errors_5xx}",
            f"connection errors              {self.answers.get('connection error', 0)}",
            f"duplicates in Kafka            {self.duplicates_kafka} (named by event_id; "
            "the warehouse keeps one)",
            f"processes that died unasked    {', '.join(self.died) or 'none'}",
            f"log lines leaking a secret     {len(self.leaks)} {self.leaks[:3] or ''}".rstrip(),
            f"answers: {dict(sorted(self.answers.items()))}",
            f"verdict: {'PASS' if self.ok else 'FAIL'} (seed {self.seed})",
        ]
        return "\n".join(lines)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


class Chain:
    """The running chain on its test network; every part can be killed and restarted."""

    def __init__(self, net: TestNet, run_dir: Path) -> None:
        self.net = net
        self.run_dir = run_dir
        self.prefix = f"soak{uuid.uuid4().hex[:8]}"
        self.kafka = NetKafka(run_dir / "kafka", net, BROKERS)
        self.pg_env = {
            **os.environ,
            "PG_RUN": str(run_dir / "pg"),
            "PG_LISTEN": net.address("pg"),
            "PG_ALLOW": str(net.subnet),
        }
        self.pg_url = f"postgresql://postgres@{net.address('pg')}:5432/plug"
        # the test's own way in, whatever the network does: the server's unix socket
        self.socket_url = f"postgresql://postgres@/plug?host={run_dir / 'pg'}&port=5432"
        self.ingress: Ingress | None = None
        self.loader: subprocess.Popen[bytes] | None = None
        self.loader_log = run_dir / "loader.log"

    # -- parts ------------------------------------------------------------------------
    def pg(self, action: str) -> None:
        argv = ["bash", str(PG_SCRIPT), action]
        if action == "up":
            argv = [*self.net.exec_prefix("pg"), *argv, "5432"]
        result = subprocess.run(
            argv, env=self.pg_env, capture_output=True, text=True, timeout=180, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg-local.sh {action}: {result.stderr}")

    def start_ingress(self, ready: bool = False) -> None:
        self.ingress = start_ingress(
            self.run_dir, self.prefix, bootstrap=self.kafka.bootstrap, ready=ready,
            port=INGRESS_PORT, host=self.net.address("ingress"),
            wrap=self.net.exec_prefix("ingress"),
            PLUG_PIPELINE_TOKENS=",".join(f"{t}={k}" for t, k in TENANTS.items()),
        )  # fmt: skip

    def start_loader(self) -> None:
        self.loader = cli.start(
            "load", "--to", self.pg_url, "--topic-prefix", self.prefix,
            "--instance-id", "soak", "--metrics-port", str(LOADER_METRICS_PORT),
            "--metrics-host", self.net.address("loader"),
            log=self.loader_log, env={"KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap},
            wrap=self.net.exec_prefix("loader"),
        )  # fmt: skip

    def stop_process(self, process: subprocess.Popen[bytes] | None, kill: bool) -> None:
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def up(self) -> None:
        self.kafka.up()
        kafka.create_topics(all_topics(self.prefix), replication=3, bootstrap=self.kafka.bootstrap)
        self.pg("up")
        self.start_ingress(ready=True)
        self.start_loader()

    def down(self) -> None:
        if self.ingress is not None:
            stop_ingress(self.ingress)
        self.stop_process(self.loader, kill=False)
        with contextlib.suppress(Exception):
            self.pg("clean")
        with contextlib.suppress(Exception):
            self.kafka.clean()

    # -- health -----------------------------------------------------------------------
    def loader_metric(self, name: str) -> float:
        url = f"http://{self.net.address('loader')}:{LOADER_METRICS_PORT}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return samples(answer.read().decode()).get(name, -1.0)
        except OSError:
            return -1.0

    def whole(self) -> bool:
        """The ingress ready with an empty spool, and the loader writing."""
        if self.ingress is None:
            return False
        figures = readyz(self.ingress)
        if figures.get("status") != "ready" or figures.get("spool_depth") != 0:
            return False
        return self.loader_metric("plug_loader_warehouse_up") == 1

    def died(self) -> list[str]:
        """The parts not running now (every fault has ended: each should be)."""
        parts = {"ingress": self.ingress.process if self.ingress else None, "loader": self.loader}
        dead = [name for name, p in parts.items() if p is None or p.poll() is not None]
        pids = {
            **{f"broker {h}": self.run_dir / "kafka" / f"node{n}" / "pid"
               for n, h in enumerate(BROKERS, 1)},
            "postgresql": self.run_dir / "pg" / "data" / "postmaster.pid",
        }  # fmt: skip
        return dead + [name for name, pid in pids.items() if not _alive(pid)]


class Schedule:
    """The faults, run at seeded random moments; those sharing a host or process take
    turns (a lock each), the others overlap."""

    def __init__(self, chain: Chain, rng: random.Random, t0: float) -> None:
        self.chain = chain
        self.rng = rng
        self.t0 = t0
        self.faults: list[Fault] = []
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def kinds(self) -> list[tuple[str, tuple[str, ...], Callable[[float], Awaitable[None]]]]:
        c, net = self.chain, self.chain.net
        rng = self.rng

        async def held(do: Callable[[], None], undo: Callable[[], None], seconds: float) -> None:
            await asyncio.to_thread(do)
            await asyncio.sleep(seconds)  # the fault's length
            await asyncio.to_thread(undo)

        def cut(side: list[str], other: list[str]) -> Callable[[float], Awaitable[None]]:
            return lambda s: held(lambda: net.partition(side, other), lambda: net.heal(side), s)

        broker = rng.choice(BROKERS)
        others = [b for b in BROKERS if b != broker]
        node = c.kafka.node_of(broker)

        async def ingress_down(kill: bool, seconds: float) -> None:
            ingress = c.ingress
            await asyncio.to_thread(c.stop_process, ingress.process if ingress else None, kill)
            await asyncio.sleep(seconds)
            await asyncio.to_thread(c.start_ingress)

        async def loader_down(kill: bool, seconds: float) -> None:
            await asyncio.to_thread(c.stop_process, c.loader, kill)
            await asyncio.sleep(seconds)
            await asyncio.to_thread(c.start_loader)

        async def broker_down(kill: bool, seconds: float) -> None:
            await asyncio.to_thread(c.kafka.kill if kill else c.kafka.term, node)
            await asyncio.sleep(seconds)
            await asyncio.to_thread(c.kafka.start, node)

        async def pg_down(how: str, seconds: float) -> None:
            await asyncio.to_thread(c.pg, how)
            await asyncio.sleep(seconds)
            await asyncio.to_thread(c.pg, "up")

        return [
            ("cut ingress|brokers", ("ingress",), cut(["ingress"], list(BROKERS))),
            (f"isolate {broker}", (broker, "brokers"), cut([broker], others)),
            ("cut loader|pg", ("loader",), cut(["loader"], ["pg"])),
            ("cut loader|brokers", ("loader",), cut(["loader"], list(BROKERS))),
            ("loss 5% ingress", ("ingress",),
             lambda s: held(lambda: net.loss("ingress", 0.05), lambda: net.heal(["ingress"]), s)),
            ("delay 300ms ingress", ("ingress",),
             lambda s: held(lambda: net.delay("ingress", 0.3, [9092]),
                            lambda: net.heal(["ingress"]), s)),
            ("reorder 5% ingress", ("ingress",),
             lambda s: held(lambda: net.reorder("ingress", 0.05),
                            lambda: net.heal(["ingress"]), s)),
            ("kill-9 ingress", ("ingress-proc",), lambda s: ingress_down(True, min(s, 5))),
            ("sigterm ingress", ("ingress-proc",), lambda s: ingress_down(False, min(s, 5))),
            (f"kill-9 broker {broker}", ("brokers",), lambda s: broker_down(True, s)),
            (f"sigterm broker {broker}", ("brokers",), lambda s: broker_down(False, s)),
            ("kill-9 loader", ("loader-proc",), lambda s: loader_down(True, min(s, 5))),
            ("sigterm loader", ("loader-proc",), lambda s: loader_down(False, min(s, 5))),
            ("crash pg", ("pg-proc",), lambda s: pg_down("crash", s)),
            ("stop pg", ("pg-proc",), lambda s: pg_down("stop", s)),
        ]  # fmt: skip

    async def one(self) -> None:
        name, locks, run = self.rng.choice(self.kinds())
        seconds = self.rng.uniform(5, 30)
        for lock in sorted(locks):
            await self._lock(lock).acquire()
        fault = Fault(name, time.monotonic() - self.t0)
        self.faults.append(fault)
        print(f"[{fault.started:6.0f}s] {name} for {seconds:.0f}s", file=sys.stderr, flush=True)
        try:
            await run(seconds)
        finally:
            fault.lasted = time.monotonic() - self.t0 - fault.started
            for lock in sorted(locks):
                self._lock(lock).release()
        fault.recovered_s = await asyncio.to_thread(self._recovery)

    def _recovery(self) -> float | None:
        start = time.monotonic()
        while not self.chain.whole():
            if time.monotonic() - start > RECOVERY_BOUND_S:
                return None
            time.sleep(0.5)  # polling the chain's health
        return time.monotonic() - start

    async def run(self, until: float) -> None:
        running: set[asyncio.Task[None]] = set()
        while time.monotonic() < until:
            task = asyncio.create_task(self.one())
            running.add(task)
            task.add_done_callback(running.discard)
            await asyncio.sleep(self.rng.uniform(5, 25))  # the next fault's moment
        await asyncio.gather(*running)


def merge(loads: list[Load]) -> Load:
    merged = Load()
    for load in loads:
        merged.sent += load.sent
        merged.answers.update(load.answers)
        merged.acked.update(load.acked)
        merged.timings += load.timings
    return merged


def warehouse_ids(socket_url: str) -> Counter[str]:
    """Every event id of the soak's two event types in the warehouse, with its rows."""
    with psycopg.connect(socket_url) as conn:
        rows = conn.execute(
            "SELECT event_id, count(*) FROM message_received GROUP BY event_id "
            "UNION ALL SELECT event_id, count(*) FROM message_status WHERE position = 0 "
            "GROUP BY event_id"
        ).fetchall()
    return Counter({str(eid): int(n) for eid, n in rows})


def wait_loaded(chain: Chain, acked: set[str], timeout_s: float) -> Counter[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = warehouse_ids(chain.socket_url)
        except psycopg.Error:
            found = Counter()
        if acked <= found.keys() or time.monotonic() > deadline:
            return found
        time.sleep(1)  # polling the warehouse


@contextlib.contextmanager
def running_chain(logs: Callable[[list[Path]], None] = lambda _: None) -> Iterator[Chain]:
    """The chain up, and down at the end whatever happens; ``logs`` gets the logs of the
    ingress and the loader before they are deleted."""
    run_dir = Path(tempfile.mkdtemp(prefix="plug-soak-"))
    try:
        with TestNet(list(HOSTS)) as net:
            chain = Chain(net, run_dir)
            try:
                chain.up()
                yield chain
            finally:
                chain.down()
                logs(sorted(run_dir.glob("*.log")))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def soak(minutes: float, seed: int) -> Outcome:
    rng = random.Random(seed)
    seconds = minutes * 60
    leaks: list[str] = []

    def scan(logs: list[Path]) -> None:
        leaks.extend(secrets.scan(logs)[1])
        for log in logs:  # and the soak's own tenants' tokens
            text = log.read_text(errors="replace")
            leaks.extend(f"{log.name}: a token" for token in TENANTS.values() if token in text)

    with running_chain(scan) as chain:
        t0 = time.monotonic()
        schedule = Schedule(chain, rng, t0)

        def url_of(tenant: str) -> Callable[[str], str]:
            base = f"http://{chain.net.address('ingress')}:{INGRESS_PORT}"
            return lambda hook: f"{base}/webhooks/{hook}?token={TENANTS[tenant]}"

        async def scenario() -> list[Load]:
            traffic = [
                run_load(url_of(t), f"{chain.prefix}-{t}", t, seconds, workers=3, rate=20)
                for t in TENANTS
            ]
            # faults stop a little before the traffic: the last ones end under load
            faults = schedule.run(t0 + max(10.0, seconds - 45))
            loads, _ = await asyncio.gather(asyncio.gather(*traffic), faults)
            return list(loads)

        load = merge(asyncio.run(scenario()))
        died = chain.died()
        chain.net.heal()
        for node in range(1, 4):
            chain.kafka.start(node)  # a no-op for a node that runs
        chain.pg("up")
        if chain.ingress is None or chain.ingress.process.poll() is not None:
            chain.start_ingress()
        if chain.loader is None or chain.loader.poll() is not None:
            chain.start_loader()
        assert chain.ingress is not None
        drain_deadline = time.monotonic() + 300
        while readyz(chain.ingress).get("spool_depth") != 0 and time.monotonic() < drain_deadline:
            time.sleep(0.5)  # polling the spool
        verdict = verify(load, chain.prefix, bootstrap=chain.kafka.bootstrap, timeout_s=120)
        found = wait_loaded(chain, load.acked_ids, 600)
    return Outcome(
        seed=seed,
        minutes=minutes,
        faults=schedule.faults,
        acked=verdict.acked,
        lost_kafka=len(verdict.lost),
        duplicates_kafka=verdict.duplicates,
        out_of_order=verdict.out_of_order,
        lost_warehouse=len(load.acked_ids - found.keys()),
        doubled_warehouse=sum(n - 1 for eid, n in found.items() if n > 1),
        answers=load.answers,
        died=died,
        leaks=leaks,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=None, help="replay a soak (printed)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1, 2**31)
    print(f"soak: seed {seed}", file=sys.stderr, flush=True)
    outcome = soak(args.minutes, seed)
    print(outcome.table())
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
