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

``engine`` also drives FastStream's NATS RPC chain as the peer (with the
``bench`` extra), ``e2e`` a hand-written HTTP front to the raw chain as its
second baseline; ``llm-latency --through-bff`` goes over HTTP against that
front. Every part runs as its own process against an embedded nats-server started
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

import msgspec

from ..core.errors import ConfigurationError
from ..runtime.settings import Settings, env_name
from .core import run_core
from .e2e import run_e2e
from .engine import run_engine
from .first_token import run_first_token
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

#: Settings the bench sets itself for every part (flags for them are not passed on).
_BENCH_OWNED = frozenset(
    (
        "nats_url",
        "metrics_host",
        "metrics_port",
        "http_host",
        "http_port",
        "api_keys",
        "api_keys_file",
    )
)

_BASELINES = {"core": "raw"}


def _baseline_name(args: argparse.Namespace) -> str:
    """What the table calls the baseline: llm-latency's is slow, and HTTP with --through-bff."""
    if args.mode == "llm-latency" and getattr(args, "first_token", None):
        return "model itself"  # time to first token straight from the model server
    if args.mode == "llm-latency":
        slow = f"{args.delay:g}s"
        return f"front {slow} chain" if args.through_bff else f"raw {slow} chain"
    return _BASELINES.get(args.mode, "raw chain")


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigurationError(
            f"bench: --concurrency {text!r} is not a list of numbers"
        ) from None
    if not levels or min(levels) < 1:
        raise ConfigurationError("bench: --concurrency needs levels of 1 or more")
    return levels


def _flag_env(args: argparse.Namespace) -> dict[str, str]:
    """Settings given as flags to ``switchboard bench``, as environment for every part.

    They win over the bench's own limits (``--max-concurrency 64`` is what the parts get);
    where the parts listen, connect and who may call them is the bench's business.
    """
    env = {}
    for field in msgspec.structs.fields(Settings):
        value = getattr(args, field.name, None)
        if value is not None and field.name not in _BENCH_OWNED:
            env[env_name(field.name)] = str(value)
    return env


async def _run(args: argparse.Namespace, settings: Settings) -> Sequence[BenchResult]:
    mode: str = args.mode
    default_requests, default_levels, default_rounds = DEFAULTS[mode]
    requests: int = default_requests if args.requests is None else args.requests
    levels = _levels(args.concurrency or default_levels)
    rounds: int = default_rounds if args.rounds is None else args.rounds
    if requests < 1 or rounds < 1 or (args.users is not None and args.users < 1):
        raise ConfigurationError("bench: --requests, --rounds and --users must be 1 or more")
    nats_url: str | None = args.nats_url  # only an explicit --nats-url: else an embedded server
    prefix = settings.subject_prefix
    part_env = _flag_env(args)

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
            part_env=part_env,
            tracing=bool(getattr(args, "tracing", False)),
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
            part_env=part_env,
            progress=progress,
        )
    if mode == "llm-latency" and getattr(args, "first_token", None):
        return await run_first_token(
            model_url=args.first_token,
            model=settings.llm_model,
            api_key=settings.openai_api_key or "unset",
            nats_url=nats_url,
            requests=10 if args.requests is None else requests,
            subject_prefix=prefix,
            progress=progress,
        )
    if mode == "llm-latency":
        return await run_llm_latency(
            nats_url=nats_url,
            conversations=requests,
            delay=args.delay,
            rounds=rounds,
            through_bff=args.through_bff,
            generator=args.load_generator,
            subject_prefix=prefix,
            part_env=part_env,
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
            part_env=part_env,
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
        print_table(results, baseline_name=_baseline_name(args))
    return 0
