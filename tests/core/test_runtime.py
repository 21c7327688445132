"""The process runner every part starts with."""

from __future__ import annotations

import subprocess
import sys

from switchboard.orchestrator import GC_THRESHOLDS

_PROBE = """
import gc
from switchboard.orchestrator import run_main

async def main():
    print(*gc.get_threshold(), gc.get_freeze_count())
    return 3

raise SystemExit(run_main(main))
"""


def test_run_main_tunes_the_collector_and_returns_the_exit_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    *thresholds, frozen = map(int, done.stdout.split())
    assert tuple(thresholds) == GC_THRESHOLDS
    assert frozen > 1000  # the imported modules' objects are out of the collector's sight
