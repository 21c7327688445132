"""A real 3-node NATS cluster on loopback, started from the SHIPPED deploy/nats config.

Each node is ``nats-server -c deploy/nats/cluster-node.conf`` (which includes
``auth.conf``) with the environment the Kubernetes StatefulSet gives it --
``POD_NAME``, ``NATS_ROUTE_PASSWORD``, ``NATS_ROUTE_0..2`` and the client
passwords from ``deploy/nats/dev.env`` -- so a test on this cluster proves the
shipped config works. Only what a pod gets from its own network namespace is
overridden on the command line:

* ``-a 127.0.0.1 -p <port>``: the client listener (4222 in the config);
* ``-m <port>``: the monitoring port (8222 in the config; its host stays the
  config's 0.0.0.0, there is no flag for it);
* ``--cluster nats://route:<password>@127.0.0.1:<port>``: the route listener
  (6222 in the config). The URL carries the route credentials: a ``--cluster``
  URL without them switches route authentication off;
* ``--pid``, ``-sd``: per-node pid file and JetStream store in a temp dir (the
  config's pid file is /var/run/nats/nats.pid; the store is given on the
  command line in the StatefulSet too).

The routes themselves come from ``NATS_ROUTE_0..2`` exactly as in Kubernetes.
The config sets ``no_advertise: true``: clients learn no other node from the
server, so a client that must survive the loss of a node is given the URLs of
all of them (``NATS_URL`` as a comma-separated list) -- as the parts' manifests
do with the headless Service.

Everything is asyncio (``asyncio.create_subprocess_exec``); a node can be
killed (SIGKILL), stopped and restarted on the same ports with its store kept.

::

    async with running_cluster() as cluster:
        url = cluster.url_list(first=1)       # node 1 first, then the others
        await cluster.kill(1)
        await cluster.restart(1)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from switchboard.orchestrator.runtime import free_port
from switchboard.orchestrator.runtime.embedded import find_nats_server
from tests.support.nats_users import NATS_DIR, dev_env, password

__all__ = [
    "CONFIG",
    "NATS_DIR",
    "NatsCluster",
    "NatsNode",
    "dev_env",
    "nats_cluster",
    "password",
    "running_cluster",
]

CONFIG = NATS_DIR / "cluster-node.conf"
ROUTE_USER = "route"


class NatsNode:
    """One nats-server of the cluster: a child process on fixed loopback ports."""

    def __init__(
        self,
        index: int,
        *,
        cluster_port: int,
        routes: list[str],
        workdir: Path,
        config: Path = CONFIG,
    ) -> None:
        self.index = index
        self.name = f"nats-{index}"
        self.cluster_port = cluster_port
        self.port = -1  # chosen by the server at the first start, then kept
        self.monitor_port = -1
        self.config = config
        self.binary = find_nats_server()
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store_dir = self.dir / "jetstream"
        self.log_file = self.dir / "nats-server.log"
        values = dev_env()
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            **values,
            "POD_NAME": self.name,
            **{f"NATS_ROUTE_{i}": route for i, route in enumerate(routes)},
        }
        self._route_secret = values["NATS_ROUTE_PASSWORD"]
        self._proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port <= 0:
            raise RuntimeError(f"{self.name} has not been started yet.")
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _args(self, ports_dir: Path) -> list[str]:
        listen = f"nats://{ROUTE_USER}:{self._route_secret}@127.0.0.1:{self.cluster_port}"
        return [
            str(self.binary),
            "-c", str(self.config),
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "--cluster", listen,
            "--pid", str(self.dir / "nats.pid"),
            "-sd", str(self.store_dir),
            "--ports_file_dir", str(ports_dir),
        ]  # fmt: skip

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, timeout: float = 15.0) -> None:
        """Start and wait until it listens (ports file written). Not yet JetStream-ready."""
        if self.running:
            return
        ports_dir = Path(tempfile.mkdtemp(prefix="ports-", dir=self.dir))
        with self.log_file.open("ab") as log:
            log.write(f"--- start #{self.starts + 1} ---\n".encode())
            log.flush()
            self._proc = await asyncio.create_subprocess_exec(
                *self._args(ports_dir),
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        ports_file = ports_dir / f"{self.binary.name}_{self._proc.pid}.ports"
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if self._proc.returncode is not None:
                break
            if ports_file.exists():
                try:
                    ports = json.loads(ports_file.read_text())
                except ValueError:  # being written
                    await asyncio.sleep(0.02)
                    continue
                self.port = int(ports["nats"][0].rsplit(":", 1)[1])
                self.monitor_port = int(ports["monitoring"][0].rsplit(":", 1)[1])
                return
            await asyncio.sleep(0.02)
        tail = self.log_tail()
        await self.kill()
        raise RuntimeError(f"{self.name} did not start within {timeout}s; its log ends:\n{tail}")

    async def kill(self) -> None:
        """SIGKILL, as a crash (or a lost machine) would; the store stays."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                await proc.wait()
        except TimeoutError:
            await self.kill()

    async def restart(self, timeout: float = 15.0) -> None:
        """Stop if running, then start on the same ports with the same store."""
        await self.stop()
        await self.start(timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- monitoring ---------------------------------------------------------------------------

    async def monitor(self, path: str, **params: Any) -> tuple[int, Any]:
        """GET ``path`` of the monitoring port: (status, decoded JSON or None)."""
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(self.monitor_url + path, params=params)
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body

    async def healthy(self) -> bool:
        """/healthz is ok: the node serves clients and its JetStream has a meta leader."""
        if not self.running:
            return False
        try:
            status, _ = await self.monitor("/healthz")
        except httpx.HTTPError:
            return False
        return status == 200

    async def route_peers(self) -> set[str]:
        """Names of the nodes this one has routes to."""
        try:
            _, body = await self.monitor("/routez")
        except httpx.HTTPError:
            return set()
        return {r.get("remote_name", "") for r in (body or {}).get("routes") or []} - {""}

    async def connection_names(self) -> list[str]:
        """Names of the clients connected to this node (``switchboard-<part>-<name>``...)."""
        try:
            _, body = await self.monitor("/connz", limit=4096)
        except httpx.HTTPError:
            return []
        return [c.get("name", "") for c in (body or {}).get("connections") or []]

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<NatsNode {self.name} client={self.port} route={self.cluster_port} {state}>"


class NatsCluster:
    """``size`` nodes of deploy/nats/cluster-node.conf, routed to each other on loopback."""

    def __init__(self, size: int = 3, *, workdir: Path | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="switchboard-cluster-"))
        secret = dev_env()["NATS_ROUTE_PASSWORD"]
        ports = [free_port() for _ in range(size)]
        routes = [f"nats://{ROUTE_USER}:{secret}@127.0.0.1:{port}" for port in ports]
        self.nodes = [
            NatsNode(i, cluster_port=port, routes=routes, workdir=self.workdir)
            for i, port in enumerate(ports)
        ]

    def __getitem__(self, index: int) -> NatsNode:
        return self.nodes[index]

    def url_list(self, first: int = 0, *, only_running: bool = False) -> str:
        """Every node's client URL, comma-separated (``NATS_URL`` style), node ``first`` first."""
        order = self.nodes[first:] + self.nodes[:first]
        return ",".join(n.url for n in order if n.running or not only_running)

    def urls(self, first: int = 0) -> list[str]:
        return self.url_list(first).split(",")

    async def start(self, timeout: float = 60.0) -> None:
        for node in self.nodes:
            await node.start()
        await self.wait_formed(timeout=timeout)

    async def wait_formed(self, timeout: float = 60.0) -> None:
        """Wait until every running node routes to every other running node and is healthy."""
        give_up = time.monotonic() + timeout
        running = [n for n in self.nodes if n.running]
        names = {n.name for n in running}
        while True:
            ok = True
            for node in running:
                if await node.route_peers() != names - {node.name} or not await node.healthy():
                    ok = False
                    break
            if ok:
                return
            if time.monotonic() > give_up:
                detail = "\n".join(f"== {n.name}\n{n.log_tail(15)}" for n in running)
                raise RuntimeError(f"the cluster did not form within {timeout}s:\n{detail}")
            await asyncio.sleep(0.2)

    async def kill(self, index: int) -> None:
        await self.nodes[index].kill()

    async def restart(self, index: int, timeout: float = 60.0) -> None:
        """Start a stopped/killed node again (same ports, same store) and wait for the cluster."""
        await self.nodes[index].restart()
        await self.wait_formed(timeout=timeout)

    async def where(self) -> dict[str, list[int]]:
        """Client connection name -> indexes of the running nodes it is connected to."""
        found: dict[str, list[int]] = {}
        for node in self.nodes:
            if node.running:
                for name in await node.connection_names():
                    found.setdefault(name, []).append(node.index)
        return found

    async def close(self) -> None:
        for node in self.nodes:
            await node.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def logs(self, lines: int = 20) -> str:
        return "\n".join(f"== {n.name}\n{n.log_tail(lines)}" for n in self.nodes)


@contextlib.asynccontextmanager
async def running_cluster(size: int = 3) -> AsyncIterator[NatsCluster]:
    """A formed cluster for the duration of the block; every node killed afterwards."""
    cluster = NatsCluster(size)
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.close()


@pytest_asyncio.fixture
async def nats_cluster() -> AsyncIterator[NatsCluster]:
    """A fresh 3-node cluster (deploy/nats/cluster-node.conf, dev.env passwords)."""
    async with running_cluster() as cluster:
        yield cluster
