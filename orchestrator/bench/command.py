"""``switchboard bench MODE``: run a benchmark and print a table or JSON.

=============  ==========================================================  ==================
mode           system under test                                           baseline
=============  ==========================================================  ==================
core           the correlation tracker (Requester) -> echo process         raw ``nc.request``
engine         Requester -> orchestrator process -> noop agent process     raw two-hop chain
e2e            HTTP (wrk) -> ``switchboard up`` (BFF, orchestrator, noop)  raw two-hop chain
llm-latency    1,000 conversations at once, the agent waits 1 s            raw chain, 1 s echo
soak           100,000 conversations: RSS growth, pending gauges after    raw two-hop chain
=============  ==========================================================  ==================

Every part runs as its own process against an embedded nats-server started
for the run (unless ``--nats-url``); progress goes to stderr, the table (or
``--json``) to stdout. Ctrl-C and SIGTERM stop every child process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from ..settings import Settings
from .core import run_core
from .e2e import run_e2e
from .engine import run_engine
from .latency import run_llm_latency
from .report import print_json, print_table
from .soak import run_soak
from .stats import BenchResult

__all__ = ["DEFAULTS", "MODES", "bench"]

MODES = ("core", "engine", "e2e", "llm-latency", "soak")

#: mode -> (requests, concurrency levels, rounds) when not given on the command line.
DEFAULTS: dict[str, tuple[int, str, int]] = {
    "core": (10_000, "1,10,100,1000", 3),
    "engine": (10_000, "1,10,100", 3),
    "e2e": (5_000, "1,10,100", 3),
    "llm-latency": (1_000, "1000", 1),
    "soak": (100_000, "100", 1),
}

_BASELINES = {"core": "raw", "llm-latency": "raw 1s chain"}


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(
            f"switchboard bench: --concurrency {text!r} is not a list of numbers"
        ) from None
    if not levels or min(levels) < 1:
        raise SystemExit("switchboard bench: --concurrency needs levels of 1 or more")
    return levels


async def _run(args: argparse.Namespace, settings: Settings) -> Sequence[BenchResult]:
    mode: str = args.mode
    default_requests, default_levels, default_rounds = DEFAULTS[mode]
    requests: int = args.requests or default_requests
    levels = _levels(args.concurrency or default_levels)
    rounds: int = args.rounds or default_rounds
    nats_url: str | None = args.nats_url  # only an explicit --nats-url: else an embedded server
    prefix = settings.subject_prefix

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if mode == "core":
        return await run_core(
            nats_url=nats_url,
            requests=requests,
            concurrency=levels,
            rounds=rounds,
            progress=progress,
        )
    if mode == "engine":
        return await run_engine(
            nats_url=nats_url,
            requests=requests,
            concurrency=levels,
            rounds=rounds,
            subject_prefix=prefix,
            progress=progress,
        )
    if mode == "e2e":
        return await run_e2e(
            nats_url=nats_url,
            requests=requests,
            concurrency=levels,
            rounds=rounds,
            users=args.users,
            generator=args.load_generator,
            subject_prefix=prefix,
            progress=progress,
        )
    if mode == "llm-latency":
        return await run_llm_latency(
            nats_url=nats_url,
            conversations=requests,
            delay=args.delay,
            rounds=rounds,
            subject_prefix=prefix,
            progress=progress,
        )
    if mode == "soak":
        return await run_soak(
            nats_url=nats_url,
            requests=requests,
            concurrency=max(levels),
            through_bff=args.through_bff,
            generator=args.load_generator,
            subject_prefix=prefix,
            progress=progress,
        )
    raise SystemExit(f"unknown bench mode {mode}")  # argparse limits the choices


async def bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``args.mode``; SIGTERM stops it like Ctrl-C does (every child process is stopped)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        if task is not None:
            task.cancel()

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, terminate)
        installed = True
    try:
        results = await _run(args, settings)
    except asyncio.CancelledError:
        if not terminated:
            raise
        print("switchboard bench: terminated", file=sys.stderr)
        return 143
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)
    if args.json:
        print_json(results)
    else:
        print_table(results, baseline_name=_BASELINES.get(args.mode, "raw chain"))
    return 0
