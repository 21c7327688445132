"""``switchboard up``: the whole system on one machine, each part its own process.

The supervisor starts an embedded nats-server (JetStream on) unless a NATS URL
was given, then the agents, the orchestrator and the BFF as child processes
(so they use every core and can be killed independently), waits until each
is ready, and prints where everything is. A part that exits unexpectedly is
restarted (with backoff). Ctrl-C or SIGTERM shuts down in dependency order --
BFF, orchestrator, agents, NATS -- each with its grace period, and exits 0.

Children run in their own session (Ctrl-C in a terminal reaches only the
supervisor, which stops them in order) and watch the supervisor's pid, so
they never outlive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass, field

import structlog

from ..core.errors import ConfigurationError
from ..core.urls import without_credentials
from .embedded import EmbeddedNatsServer
from .httpserver import bind_socket
from .settings import Settings, env_name

__all__ = ["Part", "Supervisor", "up"]

log = structlog.get_logger("switchboard.supervisor")

ENV_SUPERVISOR = "SWITCHBOARD_SUPERVISOR_PID"


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Part:
    """One child process of the system."""

    name: str
    args: list[str]
    health_url: str
    metrics_url: str
    env: dict[str, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


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
        env[ENV_SUPERVISOR] = str(os.getpid())
        env.setdefault(env_name("log_format"), "console" if sys.stderr.isatty() else "json")
        env.update(extra)
        return env

    def _plan(self, nats_url: str) -> list[Part]:
        python = [sys.executable, "-m", "switchboard"]
        parts = []
        for name, args in (("agents", ["agent", *self.agents]), ("orchestrator", ["orchestrator"])):
            port = free_port()
            parts.append(
                Part(
                    name=name,
                    args=python + args,
                    health_url=f"http://127.0.0.1:{port}/readyz",
                    metrics_url=f"http://127.0.0.1:{port}/metrics",
                    env=self._child_env(
                        nats_url,
                        {
                            env_name("metrics_host"): "127.0.0.1",
                            env_name("metrics_port"): str(port),
                        },
                    ),
                )
            )
        web = f"http://{self._display_host()}:{self.port}"
        parts.append(
            Part(
                name="bff",
                args=[*python, "bff"],
                health_url=f"{web}/readyz",
                metrics_url=f"{web}/metrics",
                env=self._child_env(
                    nats_url,
                    {env_name("http_host"): self.host, env_name("http_port"): str(self.port)},
                ),
            )
        )
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
                await self._wait_ready([part])
            if self._stopping.is_set():
                return 0
            self._announce(nats_url)
            watchers = [asyncio.create_task(self._watch(part)) for part in self.parts]
            await self._stopping.wait()
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
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
        part.process = await asyncio.create_subprocess_exec(
            *part.args,
            env=part.env,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        part.started_at = time.monotonic()
        log.info("part started", part=part.name, pid=part.process.pid)

    async def _wait_ready(self, parts: list[Part], timeout: float = 60.0) -> None:
        give_up = time.monotonic() + timeout
        pending = list(parts)
        while pending:
            if self._stopping.is_set():
                return
            for part in list(pending):
                if part.process is not None and part.process.returncode is not None:
                    raise ConfigurationError(
                        f"The {part.name} part exited with code {part.process.returncode} while "
                        "starting; its log above says why."
                    )
                if await _ready(part.health_url):
                    pending.remove(part)
            if time.monotonic() > give_up:
                names = ", ".join(p.name for p in pending)
                raise ConfigurationError(f"Not ready after {timeout:.0f}s: {names}.")
            await asyncio.sleep(0.1)

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
            "Press Ctrl-C to stop.",
            "",
        ]
        print("\n".join(lines), flush=True)

    async def _watch(self, part: Part) -> None:
        """Restart ``part`` whenever it exits while the system is meant to run."""
        backoff = 0.5
        while True:
            assert part.process is not None
            code = await part.process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - part.started_at > 30:
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
        grace = self.settings.shutdown_grace
        for part in reversed(self.parts):  # bff, orchestrator, agents
            proc = part.process
            if proc is None or proc.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace + 5):
                    await proc.wait()
            except TimeoutError:
                log.warning("part did not stop in time; killing it", part=part.name)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self.server is not None:
            await asyncio.to_thread(self.server.cleanup)
            self.server = None
        print("switchboard: stopped", flush=True)


async def _ready(url: str) -> bool:
    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    return await asyncio.to_thread(probe)


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
