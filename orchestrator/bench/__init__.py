"""``switchboard bench``: throughput and latency against a raw nats-py baseline, same run."""

from .core import run_core
from .report import print_json, print_table
from .stats import BenchResult, Run

__all__ = ["BenchResult", "Run", "print_json", "print_table", "run_core"]
