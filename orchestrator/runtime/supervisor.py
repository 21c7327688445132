"""``switchboard up``: the whole system on one machine, each part its own process.

The supervisor starts an embedded nats-server (JetStream on) unless a NATS URL
was given, then the agents, the orchestrator and the BFF as child processes
(so they use every core and can be killed independently), waits until each
is ready, and prints where everything is. A part that exits unexpectedly is
restarted (with backoff). Ctrl-C or SIGTERM shuts down in dependency order --
BFF, orchestrator, agents, NATS -- each with its grace period, and exits 0.

Each part is a :class:`~.child.ChildProcess`: it runs in its own session
(Ctrl-C in a terminal reaches only the supervisor, which stops the parts in
order) and watches the supervisor's pid, so it never outlives it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog

from ..core.errors import ConfigurationError
from ..core.tasks import stop_task
from ..core.urls import without_credentials
from .child import ChildProcess, free_port
from .embedded import EmbeddedNatsServer
from .httpserver import bind_socket
from .settings import Settings, env_name

__all__ = ["BANNER_END", "Banner", "Part", "Supervisor", "up"]

log = structlog.get_logger("switchboard.supervisor")

#: How long a part may take to become ready.
READY_TIMEOUT = 60.0
#: The banner's last line: ``switchboard up`` prints it once every part is ready.
BANNER_END = "Press Ctrl-C to stop."
#: A part's line in the banner (see ``Supervisor._announce``): name, pid, metrics URL.
_BANNER_PART = re.compile(r"^\s+(agents|orchestrator|bff)\s+pid (\d+), metrics (\S+)")


@dataclass
class Part:
    """One part of the system: its child process, and where it serves its metrics."""

    child: ChildProcess
    metrics_url: str
    restarts: int = 0

    @property
    def name(self) -> str:
        return self.child.name

    @property
    def pid(self) -> int | None:
        return self.child.pid


@dataclass
class Banner:
    """What ``switchboard up`` printed once it was up: for programs that run it as a child.

    The bench and the tests read the parts' pids and metrics URLs from it;
    written next to the code that prints it, so the two change together.
    """

    pids: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    nats_url: str = ""

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Banner:
        banner = cls()
        for line in lines:
            if match := _BANNER_PART.match(line):
                banner.pids[match.group(1)] = int(match.group(2))
                banner.metrics[match.group(1)] = match.group(3)
            elif line.startswith("  NATS "):
                banner.nats_url = line.split()[1]
        return banner


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        host: str,
        port: int,
        nats_url: str | None,
        nats_server_bin: str | None = None,
        agents: str = "all",
        overrides: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.nats_url = nats_url
        self.nats_server_bin = nats_server_bin
        self.agents = [a for a in agents.split(",") if a.strip()] or ["all"]
        self.overrides = dict(overrides or {})
        self.server: EmbeddedNatsServer | None = None
        self.parts: list[Part] = []
        self._stopping = asyncio.Event()

    def _child_env(self, nats_url: str, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.overrides)
        env["NATS_URL"] = nats_url
        env[env_name("nats_url")] = nats_url
        env.setdefault(env_name("log_format"), "console" if sys.stderr.isatty() else "json")
        env.update(extra)
        return env

    def _part(self, name: str, args: list[str], base_url: str, env: dict[str, str]) -> Part:
        # Output goes to the supervisor's terminal; each part stops when the supervisor is gone.
        child = ChildProcess(
            name,
            args,
            env=env,
            ready_url=f"{base_url}/readyz",
            ready_timeout=READY_TIMEOUT,
            grace=self.settings.shutdown_grace + 5,
            watch_parent=True,
        )
        return Part(child=child, metrics_url=f"{base_url}/metrics")

    def _plan(self, nats_url: str) -> list[Part]:
        parts = []
        for name, args in (("agents", ["agent", *self.agents]), ("orchestrator", ["orchestrator"])):
            port = free_port()
            metrics = {env_name("metrics_host"): "127.0.0.1", env_name("metrics_port"): str(port)}
            env = self._child_env(nats_url, metrics)
            parts.append(self._part(name, args, f"http://127.0.0.1:{port}", env))
        web = f"http://{self._display_host()}:{self.port}"
        listen = {env_name("http_host"): self.host, env_name("http_port"): str(self.port)}
        parts.append(self._part("bff", ["bff"], web, self._child_env(nats_url, listen)))
        return parts

    def _display_host(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"[{host}]" if ":" in host else host

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        try:
            self._check_port()
            nats_url = self.nats_url
            if nats_url is None:
                self.server = EmbeddedNatsServer(binary=self.nats_server_bin, jetstream=True)
                await asyncio.to_thread(self.server.start)
                nats_url = self.server.url
                log.info("embedded nats-server started", url=nats_url, pid=self.server.pid)
            self.parts = []
            for part in self._plan(nats_url):  # in order: what a part needs is ready first
                if self._stopping.is_set():  # Ctrl-C while starting: start nothing more
                    return 0
                self.parts.append(part)
                await self._spawn(part)
                await self._wait_ready(part)
            if self._stopping.is_set():
                return 0
            self._announce(nats_url)
            watchers = [asyncio.create_task(self._watch(part)) for part in self.parts]
            await self._stopping.wait()
            for watcher in watchers:
                await stop_task(watcher)
        finally:
            await self._shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return 0

    def _check_port(self) -> None:
        try:
            bind_socket(self.host, self.port).close()
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot listen on {self.host}:{self.port} ({exc.strerror}); pick another "
                "address with --host/--port."
            ) from exc

    async def _spawn(self, part: Part) -> None:
        await part.child.start()
        log.info("part started", part=part.name, pid=part.pid)

    async def _wait_ready(self, part: Part) -> None:
        """Wait until ``part`` is ready, or until the supervisor is told to stop.

        Raises:
            ConfigurationError: the part exited while starting, or was not ready in time.
        """
        ready = asyncio.ensure_future(part.child.wait_ready())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()  # asked first: stop_task(ready) may re-raise our own cancellation
            await stop_task(ready)  # when done, its error (not ready) is raised here
            await stop_task(stopping)

    def _announce(self, nats_url: str) -> None:
        web = f"http://{self._display_host()}:{self.port}"
        lines = [
            "",
            f"Switchboard is up: open {web}/",
            f"  API docs     {web}/docs",
            f"  NATS         {without_credentials(nats_url)}"
            + (" (embedded, JetStream on)" if self.server is not None else ""),
        ]
        lines += [f"  {p.name:<12} pid {p.pid}, metrics {p.metrics_url}" for p in self.parts]
        lines += [
            "  try:         curl -s -X POST " + web + "/v1/chat -H 'content-type: "
            'application/json\' -d \'{"message": "what is 17*23, and what time is it in '
            "Tokyo?\"}'",
            BANNER_END,
            "",
        ]
        print("\n".join(lines), flush=True)

    async def _watch(self, part: Part) -> None:
        """Restart ``part`` whenever it exits while the system is meant to run."""
        backoff = 0.5
        while True:
            code = await part.child.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - part.child.started_at > 30:
                backoff = 0.5
            log.warning(
                "part exited; restarting", part=part.name, code=code, pid=part.pid, in_s=backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
            if self._stopping.is_set():
                return
            part.restarts += 1
            await self._spawn(part)
            print(
                f"switchboard: {part.name} restarted (pid {part.pid}, restart {part.restarts})",
                flush=True,
            )

    async def _shutdown(self) -> None:
        for part in reversed(self.parts):  # bff, orchestrator, agents
            await part.child.stop()
        if self.server is not None:
            await asyncio.to_thread(self.server.cleanup)
            self.server = None
        print("switchboard: stopped", flush=True)


def up(
    settings: Settings,
    *,
    host: str | None,
    port: int | None,
    nats_url: str | None,
    nats_server_bin: str | None,
    agents: str,
    overrides: dict[str, str] | None = None,
) -> int:
    """Run the whole system until Ctrl-C / SIGTERM; returns the exit code."""
    from .logs import configure_logging
    from .part import run_main

    fmt = settings.log_format
    configure_logging(settings.log_level, json=None if fmt == "auto" else fmt == "json")
    supervisor = Supervisor(
        settings,
        host=host or settings.http_host,
        port=settings.http_port if port is None else port,
        nats_url=nats_url,
        nats_server_bin=nats_server_bin,
        agents=agents,
        overrides=overrides,
    )
    return run_main(supervisor.run)
