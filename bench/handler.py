"""The ingress's own CPU per request, through its real HTTP stack (``make bench-handler``).

No Kafka: the ingress runs with the in-memory sink (``pipeline/sink/memory.py``), so
what is measured is ours and aiohttp's: parse, dispatch, auth, read, decode,
normalise, event id, headers, metrics, the answer. Each server runs in a process of
its own that reports its own ``time.process_time()`` around a window of requests, so
the figure is CPU microseconds per request, not wall time: on a loaded machine it
moves far less than requests per second. The load client runs in this process.

Targets, measured in alternation, round after round (a slow spell hits every one):

* ``ingress``: this tree's ingress (``plug-pipeline serve``'s runner, guard included);
* ``ingress@REV`` with ``--compare REV``: the same ingress of a git revision, checked
  out in a temporary worktree (the before of a before/after in one run);
* ``bare-app``: an aiohttp ``web.Application`` handler that reads the body and answers
  200 (``bench/baselines/ceiling.py``), the ceiling ``make bench`` compares against;
* ``bare-server``: the same on aiohttp's low-level ``web.Server``;
* ``guarded-stub``: that handler behind our HTTP layer alone (serve's runner: the
  per-connection guard and our dispatch), so ``ingress`` minus ``guarded-stub`` is
  the handler's own cost, and ``guarded-stub`` minus ``bare-server`` the layer's;
* ``parser-only``: aiohttp's C request parser under a bare protocol that answers each
  request from a task (``bench/baselines/parser_only.py``), so ``bare-server`` minus
  ``parser-only`` is what aiohttp's request machinery costs above its parser.

    .venv/bin/python bench/handler.py                      # ~1 minute
    .venv/bin/python bench/handler.py --compare main --rounds 5
    .venv/bin/python bench/handler.py --rounds 1 --compare main --profile bench/out/handler
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

# Imported from the tree under test: its server process runs with PYTHONPATH set to it.
from bench.trees import worktree
from pipeline.record import Record
from pipeline.sink.base import Durability
from pipeline.sink.memory import MemorySink

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
BODIES = {
    "receive": "receive-message",
    "status": "message-status",
    "finish40": "finish-attendance",
}
_OK = b'{"status":"ok"}'


# -- the servers (each in its own process) ---------------------------------------------


class DroppingSink(MemorySink):
    """The in-memory sink, its records let go after each publish: memory stays flat."""

    async def publish(self, records: Sequence[Record]) -> Durability:
        durability = await super().publish(records)
        self.records.clear()
        return durability


async def _ingress_runner() -> object:
    from pipeline import serve
    from pipeline.config import Config

    config = Config(tokens={"bench": (TOKEN,)}, max_body_bytes=4 * 1024 * 1024)
    sink = DroppingSink()
    try:  # the allocator settings serve applies at start
        from pipeline.runtime.allocator import keep_freed_memory
    except ImportError:  # revisions before pipeline.runtime.allocator
        pass
    else:
        keep_freed_memory()
    runner_for = getattr(serve, "runner_for", None)
    if runner_for is not None:
        from pipeline.app import build_ingress

        return runner_for(build_ingress(config, sink))
    # revisions before serve.runner_for: the runner serve() built inline, on an Application
    app_module: Any = importlib.import_module("pipeline.app")
    guard: Any = importlib.import_module("pipeline.http.guard")
    return guard.GuardedAppRunner(
        app_module.build_app(config, sink),
        guard.Limits.of(config),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=config.shutdown_timeout_s,
        **guard.handler_args(config),
    )


async def _bare_app_runner() -> object:
    from aiohttp import web

    from bench.baselines.ceiling import build_app

    return web.AppRunner(build_app(), access_log=None)


async def _bare_server_runner() -> object:
    from aiohttp import web

    async def handle(request: web.BaseRequest) -> web.Response:
        await request.read()
        return web.Response(body=_OK, content_type="application/json")

    return web.ServerRunner(web.Server(handle, access_log=None))


async def _stub_runner() -> object:
    """Our HTTP layer alone: serve's runner (guard, dispatch), a handler that reads and answers."""
    from aiohttp import web

    from pipeline.config import Config
    from pipeline.http.dispatch import Dispatch, Handler
    from pipeline.http.guard import GuardedRunner, Limits, handler_args
    from pipeline.webhooks import Webhook

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        await request.read()
        return web.Response(body=_OK, headers={"Content-Type": "application/json"})

    class Stub:
        def __init__(self) -> None:
            routes: dict[str, dict[str, Handler]] = {
                f"/webhooks/{w.value}": {"POST": handle} for w in Webhook
            }
            self.handle = Dispatch(routes, tuple(w.value for w in Webhook))

        async def start(self) -> None:
            pass

        async def shutdown(self) -> None:
            pass

        async def stop(self) -> None:
            pass

    config = Config()
    return GuardedRunner(Stub(), Limits.of(config), access_log=None, **handler_args(config))


async def _serve(target: str, port: int, profile_dir: str | None) -> None:
    import cProfile
    import io
    import pstats

    from aiohttp import web

    make = {
        "bare-app": _bare_app_runner,
        "bare-server": _bare_server_runner,
        "guarded-stub": _stub_runner,
    }.get(target, _ingress_runner)
    close: Callable[[], Awaitable[None]]
    if target == "parser-only":
        from bench.baselines.parser_only import serve

        server = await serve("127.0.0.1", port)

        async def close() -> None:
            server.close()
            await server.wait_closed()

    else:
        runner = await make()
        assert isinstance(runner, web.BaseRunner)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        close = runner.cleanup
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    profile: list[cProfile.Profile] = []

    def command() -> None:
        verb, _, body = sys.stdin.readline().strip().partition(" ")
        if verb != "cpu":
            done.set()
            return
        if profile_dir is not None:
            if not profile:  # the window opens: profile it
                profile.append(cProfile.Profile())
                profile[0].enable()
            else:  # the window closes: the 30 costliest functions by own time
                prof = profile.pop()
                prof.disable()
                text = io.StringIO()
                pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(30)
                out = Path(profile_dir) / f"{target.replace('@', '-at-')}-{body}.txt"
                out.write_text(text.getvalue())
                prof.dump_stats(out.with_suffix(".prof"))  # for pstats / snakeviz
        print(f"{time.process_time():.6f}", flush=True)

    loop.add_reader(sys.stdin.fileno(), command)
    print("ready", flush=True)
    await done.wait()
    loop.remove_reader(sys.stdin.fileno())
    await close()


# -- the load client (this process) ----------------------------------------------------


def _request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path}?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _one_connection(port: int, request: bytes, count: int, statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            statuses.append(int(head[9:12]))
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
    finally:
        writer.close()


async def _drive(port: int, request: bytes, count: int, connections: int) -> list[int]:
    statuses: list[int] = []
    each = max(1, count // connections)
    await asyncio.gather(
        *(_one_connection(port, request, each, statuses) for _ in range(connections))
    )
    return statuses


class Server:
    """One target's server process and its CPU clock."""

    def __init__(self, target: str, port: int, source: Path, profile_dir: Path | None) -> None:
        env = {**os.environ, "PYTHONPATH": str(source)}
        command = [sys.executable, str(Path(__file__)), "--serve", target, "--port", str(port)]
        if profile_dir is not None:
            command += ["--profile-dir", str(profile_dir)]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=source,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{target} did not start")

    def cpu(self, body: str) -> float:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"cpu {body}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def stop(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _bodies() -> dict[str, bytes]:
    from pipeline.simulate.generator import Generator

    gen = Generator(seed=1)
    return {
        "receive": gen.receive_message_body(size_hint=1024),
        "status": gen.message_status_body(),
        "finish40": gen.finish_attendance_body(40),
    }


def _measure(
    args: argparse.Namespace, targets: dict[str, Path]
) -> dict[tuple[str, str], list[float]]:
    bodies = _bodies()
    results: dict[tuple[str, str], list[float]] = {}
    port = args.port
    for round_no in range(args.rounds):
        # alternate the order too, so no target always runs first (or last) in a round
        order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
        for target in order:
            server = Server(target, port, targets[target], args.profile)
            try:
                for name, body in bodies.items():
                    request = _request(f"/webhooks/{BODIES[name]}", body)
                    asyncio.run(_drive(port, request, args.warmup, args.connections))
                    before = server.cpu(name)
                    statuses = asyncio.run(_drive(port, request, args.requests, args.connections))
                    spent = server.cpu(name) - before
                    bad = [s for s in statuses if s != 200]
                    if bad:
                        raise RuntimeError(f"{target} answered {bad[:5]} to {name}")
                    us = spent / len(statuses) * 1e6
                    results.setdefault((target, name), []).append(us)
                    print(f"round {round_no + 1} {target:<16} {name:<9} {us:7.1f} us/request")
            finally:
                server.stop()
            port += 1
    return results


def _table(results: dict[tuple[str, str], list[float]], targets: list[str]) -> str:
    rows = [
        "| target | " + " | ".join(BODIES) + " |",
        "|---|" + "---|" * len(BODIES),
    ]
    for target in targets:
        cells = []
        for name in BODIES:
            runs = results[(target, name)]
            cells.append(f"{statistics.median(runs):.1f} (min {min(runs):.1f})")
        rows.append(f"| {target} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


START, END = "<!-- bench-handler:start -->", "<!-- bench-handler:end -->"


def write_results(table: str, argv: list[str], load: str) -> None:
    """This run's section of bench/RESULTS.md, replaced in place (the rest is kept).

    The section goes after bench/e2e's marker, so a run of ``make bench`` keeps it.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as a script, only bench/ is on the path
    from bench.e2e.report import KEPT_MARKER

    section = "\n".join(
        [
            START,
            "## The ingress's own CPU per request (`make bench-handler`)",
            "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
            f"- command: `.venv/bin/python bench/handler.py {' '.join(argv)}`",
            f"- machine: {os.cpu_count()} cores, load average at start {load}",
            "- CPU us per request of the server process (its own `time.process_time()` over",
            "  the window), median of the rounds (min in brackets); in-memory sink, no Kafka;",
            "  targets measured in alternation, round after round.",
            "",
            table,
            END,
        ]
    )
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else ""
    if START in text:
        head, _, rest = text.partition(START)
        text = head + section + rest.partition(END)[2]
    else:
        if KEPT_MARKER not in text:
            text = text.rstrip("\n") + "\n\n" + KEPT_MARKER + "\n"
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--profile-dir", help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="cProfile each server over each window into DIR/<target>-<body>.txt "
        "(the CPU figures then include the profiler's cost; RESULTS.md is not written)",
    )
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--compare", metavar="REV", help="also measure this git revision")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=10_000, help="per body and round")
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    import uvloop

    if args.serve:
        uvloop.run(_serve(args.serve, args.port, args.profile_dir))
        return 0
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.profile is not None:
        args.profile = args.profile.resolve()  # the servers run in their own trees
        args.profile.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        targets: dict[str, Path] = {"ingress": ROOT}
        if args.compare:
            tree = stack.enter_context(worktree(args.compare, "bench-handler-"))
            targets[f"ingress@{args.compare}"] = tree
        targets["bare-app"] = ROOT
        targets["bare-server"] = ROOT
        targets["guarded-stub"] = ROOT
        targets["parser-only"] = ROOT
        results = _measure(args, targets)
    print()
    print(f"CPU us per request of the server process, median of {args.rounds} rounds")
    print(f"({args.requests} requests per body and round, {args.connections} connections):")
    print()
    table = _table(results, list(targets))
    print(table)
    if args.profile is None:
        write_results(table, sys.argv[1:], load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
