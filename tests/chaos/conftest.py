"""Chaos fixtures: Switchboard parts as real processes, and a BFF-like client in the test.

``parts`` starts ``python -m switchboard orchestrator|agent ...`` as child
processes (:class:`ChildProcess`, the one way to run a part) with a known
``SWITCHBOARD_METRICS_PORT`` each (their ``/metrics`` and ``/readyz`` are read
over HTTP), logs to files under the test's tmp dir, and kills whatever is
still running when the test ends. ``client`` opens the test's own NATS
connection with a Requester and the BFF's Gateway on it: the part that sends
conversations, as the BFF does. ``deploy`` puts them together: orchestrator
replicas and agent processes on one NATS server, ready and knowing their
agents, and a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest_asyncio
from nats.aio.client import Client as NATS
from prometheus_client.parser import text_string_to_metric_families

from switchboard.bff.gateway import Gateway
from switchboard.orchestrator import Requester
from switchboard.orchestrator.runtime import ChildProcess, free_port
from tests.support.agents import LEDGER_ENV
from tests.support.cluster import nats_cluster

from . import report

__all__ = ["Client", "Deployment", "Part", "Parts", "nats_cluster"]

ROOT = Path(__file__).resolve().parents[2]

#: Settings every part process gets: quick discovery and heartbeats, offline LLM.
PART_ENV = {
    "SWITCHBOARD_LOG_LEVEL": "info",
    "SWITCHBOARD_LOG_FORMAT": "json",
    "SWITCHBOARD_LLM_PROVIDER": "local",
    "SWITCHBOARD_CATALOG_REFRESH": "0.5",
    "SWITCHBOARD_HEARTBEAT_INTERVAL": "0.2",
    "SWITCHBOARD_ACCEPT_TIMEOUT": "2",
    "SWITCHBOARD_STEP_RETRIES": "2",
    "SWITCHBOARD_SHUTDOWN_GRACE": "3",
    # Several orchestrator replicas, as deployed: a retry on another one is not run again.
    "SWITCHBOARD_REPLICA_CLAIMS": "true",
}

#: One agent process, labelled "agents", serving every test agent.
#: Where the test agents note each task they run (see tests/support/agents.py).
LEDGER_FILE = "work-ledger.txt"
ALL_AGENTS: Mapping[str, Sequence[str]] = {"agents": ("tests.support.agents:ALL",)}

#: The gauges that must come back to 0 in every part once the load is over.
IDLE_GAUGES = ("switchboard_correlation_pending", "switchboard_endpoint_in_flight")


class Part:
    """One Switchboard process (``python -m switchboard <args>``) and its HTTP pages."""

    def __init__(self, label: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.label = label
        self.metrics_port = int(env["SWITCHBOARD_METRICS_PORT"])
        self.child = ChildProcess(
            label, args, env=env, cwd=ROOT, log=log_path, ready_url=f"{self.url}/readyz"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def running(self) -> bool:
        return self.child.running

    @property
    def returncode(self) -> int | None:
        return self.child.returncode

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=2.0) as http:
            return await http.get(self.url + path)

    async def wait_agents(self, *names: str, timeout: float = 20.0) -> None:
        """An orchestrator: wait until its agent catalog (``/debug/agents``) has ``names``."""
        give_up = time.monotonic() + timeout
        known: set[str] = set()
        while time.monotonic() < give_up:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                known = set((await self.get("/debug/agents")).json())
                if set(names) <= known:
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.label} knows agents {sorted(known)}, not all of {names}")

    async def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics``: ``name{label="value",...}`` -> value."""
        text = (await self.get("/metrics")).text
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    async def total(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        return sum(
            value
            for key, value in (await self.metrics()).items()
            if key.split("{", 1)[0] == name and all(w in key for w in wanted)
        )

    async def wait_total(
        self, name: str, at_least: float, timeout: float = 15.0, **labels: str
    ) -> float:
        """Wait until :meth:`total` of ``name`` reaches ``at_least``; returns it."""
        give_up = time.monotonic() + timeout
        while True:
            value = await self.total(name, **labels)
            if value >= at_least:
                return value
            if time.monotonic() > give_up:
                raise AssertionError(f"{self.label}: {name}{labels} = {value} < {at_least}")
            await asyncio.sleep(0.05)

    async def busy(self) -> dict[str, float]:
        """The idle gauges that are not 0 (pending requests, in-flight handlers)."""
        samples = await self.metrics()
        return {
            key: value
            for key, value in samples.items()
            if key.split("{", 1)[0] in IDLE_GAUGES and value != 0
        }

    def send_signal(self, sig: signal.Signals) -> None:
        self.child.send_signal(sig)

    async def kill(self) -> None:
        """SIGKILL (a crash) and reap."""
        await self.child.kill()

    async def wait(self, timeout: float) -> int:
        """The exit code; fails the test if the process is still running after ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                return await self.child.wait()
        except TimeoutError:
            raise AssertionError(
                f"{self.label} did not exit within {timeout}s:\n{self.log_tail()}"
            ) from None

    def log_tail(self, lines: int = 25) -> str:
        return self.child.log_tail(lines)

    def log_text(self) -> str:
        assert self.child.log is not None
        try:
            return self.child.log.read_text(errors="replace")
        except OSError:
            return ""

    def __repr__(self) -> str:
        return f"<Part {self.label} pid={self.child.pid} {self.url}>"


class Parts:
    """Starts part processes for one test; ``close()`` kills what still runs."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Part] = []

    def env(self, nats_url: str, **extra: str) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SWITCHBOARD_", "OPENAI_", "NATS_"))
        }
        return {
            **base,
            "PYTHONPATH": str(ROOT),
            "NATS_URL": nats_url,
            LEDGER_ENV: str(self.workdir / LEDGER_FILE),
            "SWITCHBOARD_METRICS_PORT": str(free_port()),
            **PART_ENV,
            **extra,
        }

    async def start(self, label: str, *args: str, nats_url: str, **env: str) -> Part:
        part = Part(label, list(args), self.env(nats_url, **env), self.workdir / f"{label}.log")
        self.started.append(part)
        await part.child.start()
        return part

    async def orchestrator(self, label: str, *, nats_url: str, **env: str) -> Part:
        return await self.start(label, "orchestrator", nats_url=nats_url, **env)

    async def agent(self, label: str, *specs: str, nats_url: str, **env: str) -> Part:
        return await self.start(label, "agent", *specs, nats_url=nats_url, **env)

    async def ready(self, *parts: Part, timeout: float = 40.0) -> None:
        """Wait until every one of ``parts`` answers ``/readyz`` with 200.

        Raises:
            ConfigurationError: one exited, or was not ready in time (with its log's end).
        """
        await asyncio.gather(*(p.child.wait_ready(timeout) for p in parts))

    async def wait_idle(self, *parts: Part, timeout: float = 15.0) -> dict[str, dict[str, float]]:
        """Wait until every running part's pending/in-flight gauges are 0; returns what is not."""
        give_up = time.monotonic() + timeout
        while True:
            busy = {p.label: await p.busy() for p in parts if p.running}
            busy = {label: gauges for label, gauges in busy.items() if gauges}
            if not busy or time.monotonic() > give_up:
                return busy
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        for part in self.started:
            await part.kill()

    def logs(self, lines: int = 15) -> str:
        return "\n".join(f"== {p.label}\n{p.log_tail(lines)}" for p in self.started)


@pytest_asyncio.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    started = Parts(tmp_path)
    report.LEDGER = tmp_path / LEDGER_FILE  # the Report counts work run twice from it
    try:
        yield started
    finally:
        report.LEDGER = None
        await started.close()


class Client:
    """The test's BFF: a NATS connection, its Requester and the BFF's Gateway on it."""

    def __init__(self, nc: NATS, requester: Requester, gateway: Gateway) -> None:
        self.nc = nc
        self.requester = requester
        self.gateway = gateway

    @property
    def pending(self) -> int:
        return len(self.requester.tracker)


ClientFactory = Callable[..., Awaitable[Client]]


@pytest_asyncio.fixture
async def client() -> AsyncIterator[ClientFactory]:
    """``await client(servers, **connect_options)``: a connected, started :class:`Client`."""
    opened: list[Client] = []

    async def open_client(
        servers: str | list[str], *, inbox_prefix: str = "_INBOX", **options: Any
    ) -> Client:
        async def quiet(exc: Exception) -> None:  # reconnect noise is expected here
            pass

        options.setdefault("max_reconnect_attempts", -1)
        options.setdefault("reconnect_time_wait", 0.2)
        options.setdefault("name", "chaos-client")
        nc = await nats.connect(servers, inbox_prefix=inbox_prefix, error_cb=quiet, **options)
        requester = Requester(nc, inbox_prefix=inbox_prefix, probe_interval=0.5)
        await requester.start()
        gateway = Gateway(requester, conversation_timeout=10.0, heartbeat=0.3, accept_timeout=2.0)
        opened.append(Client(nc, requester, gateway))
        return opened[-1]

    try:
        yield open_client
    finally:
        for each in opened:
            with contextlib.suppress(Exception):
                await each.requester.close()
            with contextlib.suppress(Exception):
                await each.nc.close()


@dataclass
class Deployment:
    """One test's system on one NATS server: orchestrator replicas, agent processes, a client."""

    url: str
    orchestrators: list[Part]
    agents: dict[str, Part]
    bff: Client

    @property
    def orchestrator(self) -> Part:
        return self.orchestrators[0]


Deploy = Callable[..., Awaitable[Deployment]]


@pytest_asyncio.fixture
async def deploy(parts: Parts, client: ClientFactory) -> Deploy:
    """``await deploy(nats_url, wait_for=names, agents={label: specs})``: a ready system.

    Starts the orchestrators (labels ``orchestrators``, each with
    ``orchestrator_env``) and one agent process per ``agents`` entry (its
    specs, e.g. ``tests.support.agents:sleepy``; :data:`ALL_AGENTS` unless
    told), waits until all are ready and every orchestrator's catalog has
    ``wait_for``, then opens the client (``client_options`` go to
    ``nats.connect``). ``parts`` stops them when the test ends.
    """

    async def start(
        nats_url: str,
        *,
        wait_for: Sequence[str],
        agents: Mapping[str, Sequence[str]] = ALL_AGENTS,
        orchestrators: Sequence[str] = ("orchestrator",),
        orchestrator_env: Mapping[str, str] | None = None,
        **client_options: Any,
    ) -> Deployment:
        env = dict(orchestrator_env or {})
        started = [await parts.orchestrator(o, nats_url=nats_url, **env) for o in orchestrators]
        workers = {
            label: await parts.agent(label, *specs, nats_url=nats_url)
            for label, specs in agents.items()
        }
        await parts.ready(*started, *workers.values())
        await asyncio.gather(*(o.wait_agents(*wait_for) for o in started))
        bff = await client(nats_url, **client_options)
        return Deployment(nats_url, started, workers, bff)

    return start
