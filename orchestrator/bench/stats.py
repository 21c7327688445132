"""Latency statistics and the one result shape every bench mode reports."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import msgspec

__all__ = ["SECOND_SIDES", "BenchResult", "Run", "percentile", "second_side"]

#: The prefixes of a row's second comparison, when it has one (see :func:`second_side`).
SECOND_SIDES = ("peer", "front", "traced")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, nearest-rank."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


class Run(msgspec.Struct):
    """One measured run: how many requests, how long, each latency (seconds), errors."""

    requests: int
    wall_s: float
    latencies: list[float]
    errors: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0


class BenchResult(msgspec.Struct, kw_only=True):
    """One row of a benchmark: the system under test against its baseline, same run."""

    mode: str
    concurrency: int
    rps: float
    baseline_rps: float
    ratio: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    baseline_p50_ms: float
    baseline_p90_ms: float
    baseline_p99_ms: float
    errors: int
    baseline_errors: int = 0
    requests: int = 0
    extras: dict[str, Any] = msgspec.field(default_factory=dict)

    @classmethod
    def compare(
        cls,
        mode: str,
        concurrency: int,
        runs: Sequence[Run],
        baseline: Sequence[Run],
        **extras: Any,
    ) -> BenchResult:
        """Median throughput over rounds; latency percentiles over all rounds' requests."""
        lat = sorted(x for run in runs for x in run.latencies)
        base = sorted(x for run in baseline for x in run.latencies)
        rps = statistics.median(run.rps for run in runs) if runs else 0.0
        baseline_rps = statistics.median(run.rps for run in baseline) if baseline else 0.0
        return cls(
            mode=mode,
            concurrency=concurrency,
            rps=round(rps, 1),
            baseline_rps=round(baseline_rps, 1),
            ratio=round(rps / baseline_rps, 3) if baseline_rps else 0.0,
            p50_ms=round(percentile(lat, 0.50) * 1000, 3),
            p90_ms=round(percentile(lat, 0.90) * 1000, 3),
            p99_ms=round(percentile(lat, 0.99) * 1000, 3),
            baseline_p50_ms=round(percentile(base, 0.50) * 1000, 3),
            baseline_p90_ms=round(percentile(base, 0.90) * 1000, 3),
            baseline_p99_ms=round(percentile(base, 0.99) * 1000, 3),
            errors=sum(run.errors for run in runs),
            baseline_errors=sum(run.errors for run in baseline),
            requests=sum(run.requests for run in runs),
            extras=extras,
        )

    def as_json_object(self) -> dict[str, Any]:
        """The flat JSON object of ``--json`` (extras merged in)."""
        data = msgspec.to_builtins(self)
        extras = data.pop("extras")
        data.update(extras)
        return data  # type: ignore[no-any-return]


def second_side(
    prefix: str, name: str, ours: Sequence[Run], theirs: Sequence[Run], baseline: Sequence[Run]
) -> dict[str, Any]:
    """A row's extras for a second system measured in the same rounds (a peer, a front).

    ``{prefix}`` is its name; ``{prefix}_rps`` (median round), ``{prefix}_p50_ms``,
    ``_p90_ms``, ``_p99_ms`` (over every request), ``{prefix}_errors``;
    ``ratio_to_{prefix}``, the system under test's throughput over its, and
    ``{prefix}_ratio``, its throughput over the row's baseline.
    """
    mine = BenchResult.compare(prefix, 0, theirs, baseline)
    rps = statistics.median(run.rps for run in ours) if ours else 0.0
    return {
        prefix: name,
        f"{prefix}_rps": mine.rps,
        f"{prefix}_p50_ms": mine.p50_ms,
        f"{prefix}_p90_ms": mine.p90_ms,
        f"{prefix}_p99_ms": mine.p99_ms,
        f"{prefix}_errors": mine.errors,
        f"{prefix}_ratio": mine.ratio,
        f"ratio_to_{prefix}": round(rps / mine.rps, 3) if mine.rps else 0.0,
    }
