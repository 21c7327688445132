"""``switchboard up``: the whole system on one machine, each part its own process.

The supervisor starts an embedded nats-server (JetStream on) unless a NATS URL
was given -- on NATS's usual port 4222 when it is free, so ``nats``, ``switchboard
ask`` and ``NATS_URL=nats://127.0.0.1:4222`` work as users expect, else on a free
port it names -- with its store in a per-user data directory (history survives a
restart; ``--ephemeral``: a temporary one), then the agents, the orchestrator
and the BFF as child processes (so they use every core and can be killed
independently), waits until each is ready, and prints where everything is. A
part that exits unexpectedly is restarted (with backoff). Ctrl-C or SIGTERM
shuts down in dependency order -- BFF, orchestrator, agents, NATS -- each with
its grace period, and exits 0.

Each part is a :class:`~.child.ChildProcess`: it runs in its own session
(Ctrl-C in a terminal reaches only the supervisor, which stops the parts in
order) and watches the supervisor's pid, so it never outlives it. Once up, the
supervisor writes its URLs to a state file (:mod:`.state`) through which the other
commands find it with no flags.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ..core.errors import ConfigurationError
from ..core.tasks import stop_task
from ..core.urls import without_credentials
from .child import ChildProcess, free_port
from .embedded import EmbeddedNatsServer
from .httpserver import bind_socket
from .localmodel import LocalModel
from .settings import Settings, env_name
from .state import UpState, clear_up_state, running_up, write_up_state

__all__ = ["BANNER_END", "NATS_PORT", "Banner", "Part", "Supervisor", "up"]

log = structlog.get_logger("switchboard.supervisor")

#: How long a part may take to become ready.
READY_TIMEOUT = 60.0
#: The banner's last line: ``switchboard up`` prints it once every part is ready.
BANNER_END = "Press Ctrl-C to stop."
#: The embedded nats-server's port when it is free (NATS's usual one), else any free port.
NATS_PORT = 4222
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
            elif line.startswith("  NATS   "):
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
        data_dir: Path | None = None,
        nats_port: int = NATS_PORT,
        local_model: LocalModel | None = None,
    ) -> None:
        self.settings = settings
        #: The model server to run as a part (``--local-model``), and its OpenAI base URL.
        self.local_model = local_model
        self.model_url = ""
        self.model_log: Path | None = None
        #: The embedded server's JetStream store; None: a temporary one, deleted on exit.
        self.data_dir = data_dir
        self.nats_port = nats_port
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
        model: dict[str, str] = {}
        if self.local_model is not None:  # first: the agents and the orchestrator use it
            self.model_log = Path(tempfile.gettempdir()) / f"switchboard-model-{os.getpid()}.log"
            child, self.model_url = self.local_model.child(
                grace=self.settings.shutdown_grace + 5, log=self.model_log
            )
            parts.append(Part(child=child, metrics_url=f"{self.model_url}/models"))
            model = self.local_model.env(self.model_url)
        for name, args in (("agents", ["agent", *self.agents]), ("orchestrator", ["orchestrator"])):
            port = free_port()
            metrics = {env_name("metrics_host"): "127.0.0.1", env_name("metrics_port"): str(port)}
            env = self._child_env(nats_url, {**metrics, **model})
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
        failed = False
        try:
            self._check_port()
            nats_url = self.nats_url
            if nats_url is None:
                self._check_data_dir()
                self.server = await asyncio.to_thread(self._start_embedded)
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
            web = f"http://{self._display_host()}:{self.port}"
            data = str(self.data_dir) if self.server is not None and self.data_dir else None
            if running_up() is None:  # the first `up` stays the one commands find
                state = UpState(pid=os.getpid(), nats_url=nats_url, web_url=web, data_dir=data)
                write_up_state(state)
            watchers = [asyncio.create_task(self._watch(part)) for part in self.parts]
            await self._stopping.wait()
            for watcher in watchers:
                await stop_task(watcher)
        except BaseException:
            failed = True  # the error says what happened; "stopped" would read as success
            raise
        finally:
            clear_up_state(os.getpid())
            await self._shutdown(quiet=failed)
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

    def _check_data_dir(self) -> None:
        """Refuse to share a JetStream store with another running ``up``.

        Raises:
            ConfigurationError: another ``switchboard up`` uses the same data directory.
        """
        other = running_up()
        if other is None or other.pid == os.getpid() or self.data_dir is None:
            return
        if other.data_dir is not None and Path(other.data_dir) == self.data_dir:
            raise ConfigurationError(
                f"switchboard up is already running (pid {other.pid}, {other.web_url}) with the "
                f"data directory {self.data_dir}; stop it first, or give this one another "
                "with --data-dir (or --ephemeral)."
            )

    def _start_embedded(self) -> EmbeddedNatsServer:
        """The embedded nats-server, on ``nats_port`` when free, else on a free port.

        Raises:
            ConfigurationError: the server did not start.
        """

        def server(port: int) -> EmbeddedNatsServer:
            return EmbeddedNatsServer(
                binary=self.nats_server_bin, jetstream=True, port=port, store_dir=self.data_dir
            )

        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.nats_port > 0:
            try:
                bind_socket("127.0.0.1", self.nats_port).close()
            except OSError:
                pass  # taken: any free port, said in the banner
            else:
                preferred = server(self.nats_port)
                try:
                    preferred.start()
                except ConfigurationError:  # taken in between: any free port
                    preferred.cleanup()
                else:
                    return preferred
        fallback = server(-1)
        fallback.start()
        return fallback

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
        shown = without_credentials(nats_url)
        nats = f"  NATS         {shown}"
        if self.server is not None:
            moved = self.nats_port > 0 and self.server.port != self.nats_port
            nats += (
                f" (embedded, JetStream on; port {self.nats_port} was taken)"
                if moved
                else " (embedded, JetStream on)"
            )
        lines = ["", f"Switchboard is up: open {web}/", f"  API docs     {web}/docs", nats]
        if self.server is not None:
            lines.append(
                f"  data         {self.data_dir} (history is kept across restarts)"
                if self.data_dir is not None
                else "  data         a temporary directory, deleted on exit (--ephemeral)"
            )
        if not (self.settings.api_keys or self.settings.api_keys_file):
            lines.append("  access       local mode (no API keys): loopback only, user 'local'")
        lines.append(f"  model        {self._model_line()}")
        lines += [
            f"  {p.name:<12} pid {p.pid}, metrics {p.metrics_url}"
            for p in self.parts
            if p.name != "model"
        ]
        lines += [
            "  try:         curl -s -X POST " + web + "/v1/chat -H 'content-type: "
            'application/json\' -d \'{"message": "what is 17*23, and what time is it in '
            "Tokyo?\"}'",
            '               switchboard ask "what is 17*23?"   (other commands find this '
            "system by themselves)",
            f"  NATS CLI:    export NATS_URL={shown}",
            BANNER_END,
            "",
        ]
        print("\n".join(lines), flush=True)

    def _model_line(self) -> str:
        """Which language model answers open questions, as the banner says it."""
        if self.local_model is not None:
            return self.local_model.describe(self.model_url, self.model_log)
        settings = self.settings
        provider = settings.llm_provider
        if provider == "auto":
            provider = "openai" if settings.openai_api_key else "local"
        if provider == "local":
            return "none: offline rules (--local-model runs one here; or set OPENAI_API_KEY)"
        where = without_credentials(settings.openai_base_url or "https://api.openai.com/v1")
        return f"{settings.llm_model} at {where}"

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

    async def _shutdown(self, *, quiet: bool = False) -> None:
        for part in reversed(self.parts):  # bff, orchestrator, agents
            await part.child.stop()
        if self.server is not None:
            await asyncio.to_thread(self.server.cleanup)
            self.server = None
        if self.model_log is not None and not quiet:  # kept when `up` failed: it says why
            await asyncio.to_thread(self.model_log.unlink, missing_ok=True)
        if not quiet:
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
    data_dir: Path | None = None,
    quiet: bool = False,
    local_model: LocalModel | None = None,
) -> int:
    """Run the whole system until Ctrl-C / SIGTERM; returns the exit code.

    ``data_dir``: the embedded server's JetStream store (None: a temporary one).
    ``quiet`` (no log level was asked for): the supervisor and its parts log warnings
    and errors only, so the banner is the first thing a person reads.
    """
    from .logs import configure_logging
    from .part import run_main

    overrides = dict(overrides or {})
    level = settings.log_level
    if quiet:
        level = overrides[env_name("log_level")] = "warning"
    fmt = settings.log_format
    configure_logging(level, json=None if fmt == "auto" else fmt == "json")
    supervisor = Supervisor(
        settings,
        host=host or settings.http_host,
        port=settings.http_port if port is None else port,
        nats_url=nats_url,
        nats_server_bin=nats_server_bin,
        agents=agents,
        overrides=overrides,
        data_dir=data_dir,
        local_model=local_model,
    )
    return run_main(supervisor.run)
