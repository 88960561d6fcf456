"""``plug-pipeline simulate``: send realistic Plug webhooks to an ingress."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping

from pipeline.config import DEFAULT_TENANT, load_tokens
from pipeline.errors import ConfigError
from pipeline.simulate.generator import Generator
from pipeline.simulate.runner import LoadSpec, execute

DEFAULT_RATE = 100.0
DEFAULT_DURATION_S = 10.0


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = getattr(kind, "__name__", "value")  # argparse names it in errors
    return parse


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "simulate",
        help="POST realistic Plug webhooks to an ingress (demo, smoke test, load)",
        description="A stand-in for Plug: conversations with all seven webhooks, sent "
        "open-loop at --rate or closed-loop with --concurrency.",
    )
    parser.add_argument("--target", default="http://127.0.0.1:8080", help="ingress base URL")
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant whose token to use")
    parser.add_argument("--token", help="tenant token (default: from PLUG_PIPELINE_TOKENS)")
    parser.add_argument(
        "--token-in", choices=("query", "header"), default="query", help="?token= or Bearer"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--rate", type=_positive(float), help=f"open loop, requests/s (default {DEFAULT_RATE:g})"
    )
    mode.add_argument("--concurrency", type=_positive(int), help="closed loop with N workers")
    parser.add_argument(
        "--duration",
        type=_positive(float),
        help=f"seconds to run (default {DEFAULT_DURATION_S:g} unless --count)",
    )
    parser.add_argument("--count", type=_positive(int), help="stop after N requests")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same bodies")
    parser.add_argument(
        "--start-ms", type=int, help="time of the first webhook, epoch ms (default: now)"
    )
    parser.add_argument("--instances", type=_positive(int), default=3)
    parser.add_argument("--customers", type=_positive(int), default=500)
    parser.add_argument("--operators", type=_positive(int), default=12, help="the team's size")
    parser.add_argument(
        "--parallel", type=_positive(int), default=4, help="conversations open at once"
    )
    parser.add_argument(
        "--time-scale",
        type=_positive(float),
        default=1.0,
        help="simulated seconds per real second (e.g. 120: a working day in a few minutes); "
        "above 1 the simulated period ends now unless --start-ms is given",
    )
    parser.add_argument(
        "--max-outstanding",
        type=_positive(int),
        default=1024,
        help="open loop: requests in flight before new ones are dropped",
    )
    parser.add_argument("--timeout", type=_positive(float), default=30.0, help="per request, s")
    parser.add_argument("--acked-file", help="write '<event_id> <webhook>' for each 200")
    parser.add_argument(
        "--tolerate-errors",
        action="store_true",
        help="exit 0 even if some answers were not 2xx or got no answer",
    )
    parser.set_defaults(func=run)


def resolve_token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """``--token``, else the tenant's token from the environment, else None (auth off)."""
    if args.token:
        return str(args.token)
    tokens = load_tokens(environ)
    if tokens and args.tenant not in tokens:
        raise ConfigError(f"no token for tenant {args.tenant!r} in PLUG_PIPELINE_TOKENS")
    newest = tokens.get(args.tenant)
    return newest[-1] if newest else None


def build_spec(args: argparse.Namespace, token: str | None) -> LoadSpec:
    if not args.target.startswith(("http://", "https://")):
        raise ConfigError(f"--target must be an http(s) URL, got {args.target!r}")
    rate = args.rate if args.rate or args.concurrency else DEFAULT_RATE
    duration = args.duration if args.duration or args.count else DEFAULT_DURATION_S
    return LoadSpec(
        target=args.target,
        token=token,
        token_in=args.token_in,
        rate=rate,
        concurrency=args.concurrency,
        duration_s=duration,
        count=args.count,
        max_outstanding=args.max_outstanding,
        timeout_s=args.timeout,
    )


def run(args: argparse.Namespace) -> int:
    try:
        spec = build_spec(args, resolve_token(args, os.environ))
    except ConfigError as exc:
        print(f"plug-pipeline simulate: {exc}", file=sys.stderr)
        return 2
    # Simulated time then advances about as fast as the requests go out, times the scale.
    step = (1000 / spec.rate if spec.rate else 10.0) * args.time_scale
    start_ms = args.start_ms
    if start_ms is None:
        start_ms = int(time.time() * 1000)
        if args.time_scale > 1 and spec.duration_s:
            # Compressed time: let the simulated period end about now, not in the future.
            start_ms -= int(spec.duration_s * args.time_scale * 1000)
    generator = Generator(
        args.seed,
        start_ms=start_ms,
        instances=args.instances,
        customers=args.customers,
        parallel=args.parallel,
        mean_step_ms=step,
        operators=args.operators,
    )
    with contextlib.ExitStack() as stack:
        acked = None
        if args.acked_file:
            try:
                acked = stack.enter_context(open(args.acked_file, "w", encoding="utf-8"))
            except OSError as exc:
                print(f"plug-pipeline simulate: --acked-file: {exc}", file=sys.stderr)
                return 2
        return asyncio.run(
            execute(
                spec,
                generator,
                acked=acked,
                tolerate_errors=args.tolerate_errors,
                progress=sys.stderr,
                handle_sigint=True,
            )
        )
