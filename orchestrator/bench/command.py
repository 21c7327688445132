"""``switchboard bench MODE``: run a benchmark and print a table or JSON."""

from __future__ import annotations

import argparse
import sys

from ..settings import Settings
from .core import run_core
from .report import print_json, print_table

__all__ = ["bench"]


async def bench(args: argparse.Namespace, settings: Settings) -> int:
    levels = [int(x) for x in str(args.concurrency).split(",") if x.strip()]
    nats_url = args.nats_url  # only an explicit --nats-url: otherwise an embedded server

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.mode == "core":
        results = await run_core(
            nats_url=nats_url,
            requests=args.requests,
            concurrency=levels,
            rounds=args.rounds,
            progress=progress,
        )
        baseline = "raw"
    else:  # pragma: no cover - argparse limits the choices
        raise SystemExit(f"unknown bench mode {args.mode}")
    if args.json:
        print_json(results)
    else:
        print_table(results, baseline_name=baseline)
    return 0
