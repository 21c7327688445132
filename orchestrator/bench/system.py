"""The system under test as real processes: NATS, Switchboard parts, ``switchboard up``.

Every part runs as its own process, exactly as in production
(``python -m switchboard orchestrator``, ``python -m switchboard agent
MODULE:ATTR``, ``python -m switchboard up``), configured through
``SWITCHBOARD_*`` environment variables. Each is started in a context manager
that waits until the part is ready and stops it (SIGTERM, then SIGKILL) on
the way out -- on success, on error and on Ctrl-C (the bench task is
cancelled, every ``finally`` runs). Parts started directly also watch the
bench's pid (``runtime.child.ENV_SUPERVISOR``), so even a bench killed with
SIGKILL leaves nothing running. How a child is started, awaited and stopped
is ``runtime.child.ChildProcess``, shared with ``switchboard up`` and the tests.

Also here: reading a process's RSS from ``/proc`` and the pending gauges
from its ``/metrics`` (over ``runtime.httpclient``, re-exported here).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtime.child import ChildProcess, free_port
from ..runtime.embedded import EmbeddedNatsServer
from ..runtime.httpclient import http_get, http_request
from ..runtime.supervisor import BANNER_END, Banner

__all__ = [
    "PENDING_GAUGES",
    "BenchLogs",
    "BenchNats",
    "Part",
    "UpSystem",
    "bench_logs",
    "child_env",
    "http_get",
    "http_request",
    "limits_env",
    "nats_server",
    "pending_gauges",
    "rss_mb",
    "switchboard_part",
    "switchboard_up",
    "together",
    "wait_pending_zero",
]

#: The gauges that must be back to 0 when no request is under way.
PENDING_GAUGES = (
    "switchboard_correlation_pending",
    "switchboard_endpoint_in_flight",
    "switchboard_http_in_flight",
)

_STOP_TIMEOUT = 20.0


# -- NATS and logs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchNats:
    """The NATS server of a run: its URL, and its pid when the bench started it."""

    url: str
    pid: int | None = None


@contextlib.asynccontextmanager
async def nats_server(url: str | None, *, jetstream: bool = True) -> AsyncIterator[BenchNats]:
    """``url`` as given, or an embedded nats-server (JetStream on) for the duration."""
    if url:
        yield BenchNats(url)
        return
    server = EmbeddedNatsServer(jetstream=jetstream)
    await asyncio.to_thread(server.start)
    try:
        yield BenchNats(server.url, server.pid)
    finally:
        await asyncio.to_thread(server.cleanup)


@dataclass
class BenchLogs:
    """A directory for the child processes' logs: removed after a clean run, kept otherwise."""

    path: Path

    def file(self, name: str) -> Path:
        return self.path / f"{name}.log"


@contextlib.asynccontextmanager
async def bench_logs() -> AsyncIterator[BenchLogs]:
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="switchboard-bench-"))
    try:
        yield BenchLogs(path)
    except Exception:
        print(f"switchboard bench: the parts' logs are kept in {path}", file=sys.stderr)
        raise
    except BaseException:  # Ctrl-C, SIGTERM: nothing to look at
        shutil.rmtree(path, ignore_errors=True)
        raise
    await asyncio.to_thread(shutil.rmtree, path, True)


# -- starting several things at once ----------------------------------------------------------


async def _hold(
    manager: contextlib.AbstractAsyncContextManager[Any],
    entered: asyncio.Future[Any],
    release: asyncio.Event,
) -> None:
    async with manager as value:
        entered.set_result(value)
        await release.wait()


def _entering_failed(task: asyncio.Task[None]) -> None:
    """Raise what made ``task`` end before its context manager was entered."""
    task.result()
    raise RuntimeError("a context manager exited while entering")


@contextlib.asynccontextmanager
async def together(
    *managers: contextlib.AbstractAsyncContextManager[Any],
) -> AsyncIterator[list[Any]]:
    """Enter ``managers`` concurrently (start processes in parallel); exit them concurrently.

    Yields their values in order. If one fails to enter, the others are
    cancelled or exited and the first error is raised; every one that was
    entered is exited, whatever happens (error, Ctrl-C).
    """
    loop = asyncio.get_running_loop()
    release = asyncio.Event()
    entered: list[asyncio.Future[Any]] = [loop.create_future() for _ in managers]
    tasks = [
        loop.create_task(_hold(manager, future, release))
        for manager, future in zip(managers, entered, strict=True)
    ]
    failed: BaseException | None = None
    try:
        while not all(future.done() for future in entered):
            for task, future in zip(tasks, entered, strict=True):
                if task.done() and not future.done():
                    _entering_failed(task)
            waiting: set[asyncio.Future[Any]] = {
                t for t, f in zip(tasks, entered, strict=True) if not f.done()
            }
            waiting |= {f for f in entered if not f.done()}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        yield [future.result() for future in entered]
    except BaseException as exc:
        failed = exc
        raise
    finally:
        release.set()
        for task, future in zip(tasks, entered, strict=True):
            if not future.done():
                task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        if failed is None:
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome


# -- environment --------------------------------------------------------------------------------


def child_env(nats_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a part: this one, NATS URL, offline LLM, JSON logs."""
    env = dict(os.environ)
    env.update(
        {
            "NATS_URL": nats_url,
            "SWITCHBOARD_NATS_URL": nats_url,
            "SWITCHBOARD_LLM_PROVIDER": "local",
            "SWITCHBOARD_LOG_FORMAT": "json",
            "SWITCHBOARD_SHUTDOWN_GRACE": "5",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def limits_env(concurrency: int) -> dict[str, str]:
    """Limits that let ``concurrency`` requests (and their agent calls) run at once."""
    return {
        "SWITCHBOARD_MAX_CONCURRENCY": str(max(256, 2 * concurrency)),
        "SWITCHBOARD_MAX_BACKLOG": str(max(2_000, 4 * concurrency)),
        "SWITCHBOARD_MAX_PENDING": str(max(10_000, 8 * concurrency)),
        "SWITCHBOARD_MAX_INFLIGHT": str(max(1_000, 2 * concurrency)),
        "SWITCHBOARD_MAX_INFLIGHT_PER_USER": str(max(8, concurrency)),
    }


# -- HTTP, /proc, /metrics ----------------------------------------------------------------------


async def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (``VmRSS`` of ``/proc/<pid>/status``); 0 if unknown."""

    def read() -> float:
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return 0.0
        match = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else 0.0

    return await asyncio.to_thread(read)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


async def pending_gauges(metrics_url: str) -> dict[str, float]:
    """The sum over labels of each of :data:`PENDING_GAUGES` that ``metrics_url`` exports.

    Raises:
        RuntimeError: the page is not there, or exports none of them.
    """
    status, body = await http_get(metrics_url)
    if status != 200:
        raise RuntimeError(f"{metrics_url} answered {status}")
    found: dict[str, float] = {}
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("# TYPE "):  # declared: a labelled gauge with nothing pending has
            name = line.split()[2]  # no sample at all, which means 0
            if name in PENDING_GAUGES:
                found.setdefault(name, 0.0)
            continue
        match = _SAMPLE.match(line)
        if match and match.group(1) in PENDING_GAUGES:
            found[match.group(1)] = found.get(match.group(1), 0.0) + float(match.group(3))
    if not found:
        raise RuntimeError(f"{metrics_url} exports none of {', '.join(PENDING_GAUGES)}")
    return found


async def wait_pending_zero(metrics_url: str, *, timeout: float = 5.0) -> dict[str, float]:
    """Scrape until every pending gauge is 0 (work may be finishing) or ``timeout``; the last."""
    give_up = time.monotonic() + timeout
    while True:
        gauges = await pending_gauges(metrics_url)
        if not any(gauges.values()) or time.monotonic() > give_up:
            return gauges
        await asyncio.sleep(0.1)


# -- processes ----------------------------------------------------------------------------------


@dataclass
class Part:
    """One running part of the system."""

    name: str
    pid: int
    metrics_url: str
    log: Path | None = None


@contextlib.asynccontextmanager
async def switchboard_part(
    name: str,
    args: Sequence[str],
    *,
    nats_url: str,
    logs: BenchLogs,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 60.0,
    port: int | None = None,
) -> AsyncIterator[Part]:
    """``python -m switchboard ARGS`` with its own metrics port; yields once ``/readyz`` is 200.

    ``port``: the metrics port (a free one if None), also the HTTP port for the BFF (which
    serves ``/readyz`` and ``/metrics`` there).

    Raises:
        ConfigurationError: it exited while starting, or was not ready in time.
    """
    port = free_port() if port is None else port
    base = f"http://127.0.0.1:{port}"
    metrics = {
        "SWITCHBOARD_METRICS_HOST": "127.0.0.1",
        "SWITCHBOARD_METRICS_PORT": str(port),
        "SWITCHBOARD_HTTP_PORT": str(port),  # the BFF's: it serves /readyz there
    }
    child = ChildProcess(
        name,
        args,
        env=child_env(nats_url, {**metrics, **(env or {})}),
        log=logs.file(name),
        ready_url=f"{base}/readyz",
        ready_timeout=ready_timeout,
        grace=_STOP_TIMEOUT,
        watch_parent=True,
    )
    async with child:
        assert child.pid is not None
        yield Part(name=name, pid=child.pid, metrics_url=f"{base}/metrics", log=child.log)


# -- switchboard up -----------------------------------------------------------------------------


@dataclass
class UpSystem:
    """A running ``switchboard up``: its web URL and its parts (from its banner)."""

    url: str
    pid: int
    parts: dict[str, Part] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def switchboard_up(
    *,
    nats_url: str,
    logs: BenchLogs,
    agents: str,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 90.0,
) -> AsyncIterator[UpSystem]:
    """``switchboard up --nats-url URL --agents AGENTS`` on a free port; yields once it is up.

    Stopped with SIGINT (what Ctrl-C does: the parts stop in order).

    Raises:
        ConfigurationError: it exited while starting, or printed no banner in time.
    """
    port = free_port()
    args = ["up", "--nats-url", nats_url, "--host", "127.0.0.1", "--port", str(port)]
    child = ChildProcess(
        "switchboard up",
        [*args, "--agents", agents],
        env=child_env(nats_url, env),  # up's parts watch up; up watches nobody
        log=logs.file("up"),
        pipe=True,
        ready_line=re.escape(BANNER_END),
        ready_timeout=ready_timeout,
        stop_signal=signal.SIGINT,
        grace=_STOP_TIMEOUT,
    )
    async with child:
        assert child.pid is not None
        banner = Banner.parse(child.lines)
        parts = {
            name: Part(name, pid, banner.metrics[name], child.log)
            for name, pid in banner.pids.items()
        }
        yield UpSystem(
            url=f"http://127.0.0.1:{port}", pid=child.pid, parts=parts, lines=child.lines
        )
