"""Where the time goes: CPU seconds each process spent per request, from ``/proc``.

Throughput on a shared machine moves with the neighbours; the CPU a process
spends per request does much less, and it says which part is the
bottleneck. :class:`CpuAccount` reads ``utime + stime`` of every named
process (``/proc/<pid>/stat``) around each measured run and reports
microseconds of CPU per request for each (``cpu_us_<part>``). For the bench
process itself (``bench``) the CPU of its reaped children is included: that
is the HTTP load generator in ``e2e``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from .stats import Run

__all__ = ["CpuAccount", "cpu_seconds", "cpu_summary"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(pid: int, children: bool) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


async def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """CPU seconds ``pid`` has used (user + system; 0 when unknown, e.g. not on Linux)."""
    return await asyncio.to_thread(_read, pid, children)


class CpuAccount:
    """Sums the CPU each named process spends during the runs it measures."""

    def __init__(self, pids: Mapping[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.seconds = dict.fromkeys(self.pids, 0.0)
        self.requests = 0
        self._me = os.getpid()

    async def _snapshot(self) -> dict[str, float]:
        values = await asyncio.gather(
            *(cpu_seconds(pid, children=pid == self._me) for pid in self.pids.values())
        )
        return dict(zip(self.pids, values, strict=True))

    async def measure(self, work: Awaitable[Run]) -> Run:
        """Await ``work`` (one measured run), adding each process's CPU to the account."""
        before = await self._snapshot()
        run = await work
        after = await self._snapshot()
        for name in self.pids:
            self.seconds[name] += max(0.0, after[name] - before[name])
        self.requests += run.requests
        return run

    def around(self, run: Callable[[], Awaitable[Run]]) -> Callable[[], Awaitable[Run]]:
        """``run`` (a measured run, started when called), adding its CPU to this account."""
        return lambda: self.measure(run())

    def per_request_us(self, prefix: str = "") -> dict[str, float]:
        """``{prefix}cpu_us_<name>`` for each process, and ``{prefix}cpu_us_total``."""
        if not self.requests:
            return {}
        scale = 1e6 / self.requests
        extras = {f"{prefix}cpu_us_{name}": round(s * scale, 1) for name, s in self.seconds.items()}
        extras[f"{prefix}cpu_us_total"] = round(sum(self.seconds.values()) * scale, 1)
        return extras


def cpu_summary(ours: CpuAccount, baseline: CpuAccount) -> str:
    """One progress line: CPU per request of each process, the system's then the baseline's."""

    def line(account: CpuAccount) -> str:
        values = account.per_request_us()
        return ", ".join(f"{k.removeprefix('cpu_us_')} {v:.0f}" for k, v in values.items())

    return f"    CPU us/request: {line(ours)} | raw chain: {line(baseline)}"
