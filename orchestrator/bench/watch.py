"""Watching parts from outside while they hold many conversations: RSS and event-loop lag.

``switchboard bench llm-latency`` runs a watcher as its own process
(:mod:`.watcher`, so its timing is not the bench's own busy event loop) for
the duration of its measured rounds. Every 50 ms it reads each part's
``VmRSS`` and, for a part with a URL (its ``/healthz``), times one GET on a
kept-alive HTTP/1.1 connection. That page is served by the part's own event
loop, so the time it takes is the loop's lag plus a constant (measured idle,
before the first round: about 1 ms). Samples carry ``time.monotonic()`` (one
clock for every process on Linux), so the bench keeps those of its measured
runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .processes import python_process
from .stats import percentile

__all__ = ["PartWatch", "Sample", "Samples", "watch_parts"]

#: t, rss_mb, probe_ms (None: no probe, or it failed)
Sample = tuple[float, float, float | None]


@dataclass
class PartWatch:
    """One part's samples within a window: RSS peak and probe times."""

    rss_mb: list[float] = field(default_factory=list)
    probe_ms: list[float] = field(default_factory=list)
    idle_probe_ms: list[float] = field(default_factory=list)

    def lag(self) -> dict[str, float]:
        """``lag_p50_ms``, ``lag_p99_ms``, ``lag_max_ms`` (probe time over the idle median)."""
        if not self.probe_ms:
            return {}
        idle = sorted(self.idle_probe_ms)
        base = percentile(idle, 0.5) if idle else 0.0
        busy = sorted(max(0.0, ms - base) for ms in self.probe_ms)
        return {
            "lag_p50_ms": round(percentile(busy, 0.5), 1),
            "lag_p99_ms": round(percentile(busy, 0.99), 1),
            "lag_max_ms": round(busy[-1], 1),
        }


@dataclass
class Samples:
    """What a watch saw, by part; :meth:`windows` cuts out the measured runs."""

    by_part: dict[str, list[Sample]] = field(default_factory=dict)

    def windows(self, spans: list[tuple[float, float]]) -> dict[str, PartWatch]:
        """Each part's samples within ``spans`` (``time.monotonic()``); idle: before them all."""
        first = min(start for start, _ in spans) if spans else 0.0
        found: dict[str, PartWatch] = {}
        for name, samples in self.by_part.items():
            part = found[name] = PartWatch()
            for t, rss, ms in samples:
                if any(start <= t <= end for start, end in spans):
                    part.rss_mb.append(rss)
                    if ms is not None:
                        part.probe_ms.append(ms)
                elif t < first and ms is not None:
                    part.idle_probe_ms.append(ms)
        return found


@contextlib.asynccontextmanager
async def watch_parts(
    parts: Mapping[str, tuple[int, str | None]], *, workdir: Path, interval: float = 0.05
) -> AsyncIterator[Samples]:
    """Watch ``parts`` (name -> pid, ``/healthz`` URL or None) in a separate process.

    The samples are filled in once the block is left (the watcher writes them when stopped).

    Raises:
        ConfigurationError: the watcher did not start.
    """
    out = workdir / f"watch-{time.monotonic_ns()}.json"
    specs = [f"{name}={pid}" + (f"={url}" if url else "") for name, (pid, url) in parts.items()]
    samples = Samples()
    async with python_process(
        "switchboard.orchestrator.bench.watcher", str(out), str(interval), *specs
    ):
        yield samples
    with contextlib.suppress(OSError, ValueError):
        text = await asyncio.to_thread(out.read_text)
        samples.by_part = {
            name: [(t, rss, ms) for t, rss, ms in rows] for name, rows in json.loads(text).items()
        }
