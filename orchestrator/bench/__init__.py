"""``switchboard bench``: throughput and latency against raw nats-py baselines, same run.

Modes: ``core`` (the correlation tracker), ``engine`` (orchestrator + agent
processes), ``e2e`` (HTTP through ``switchboard up``), ``llm-latency`` (many
slow conversations at once) and ``soak`` (memory and pending work after many
conversations). See BENCHMARKS.md.
"""

from .core import run_core
from .e2e import run_e2e
from .engine import run_engine
from .latency import run_llm_latency
from .report import environment, print_json, print_table
from .soak import run_soak
from .stats import BenchResult, Run

__all__ = [
    "BenchResult",
    "Run",
    "environment",
    "print_json",
    "print_table",
    "run_core",
    "run_e2e",
    "run_engine",
    "run_llm_latency",
    "run_soak",
]
