"""One Switchboard process: its NATS connection, its components, health endpoint and signals.

Start order: connect to NATS, start the requester if a component sends
requests (replies must be routable before anything sends), start the
components (endpoints last, so work only arrives once everything it needs
runs), then the health endpoint reports ready. Shutdown (SIGTERM or Ctrl-C)
reverses it: components stop taking work and finish in-flight work within
``shutdown_grace``, the requester fails what is still pending, the NATS
connection drains, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Protocol

import msgspec
import structlog
from nats.aio.client import Client as NATS

import switchboard

from ..core.connection import ConnectionEvents, connect
from ..core.errors import ConfigurationError
from ..core.metrics import PART_INFO
from ..core.requester import Requester
from ..core.subjects import Subjects
from ..core.tasks import stop_in_order, stop_task
from .child import ENV_SUPERVISOR
from .health import HealthServer
from .logs import configure_logging
from .settings import Settings, env_name, flag_name
from .tracing import configure_tracing, shutdown_tracing

__all__ = [
    "GC_THRESHOLDS",
    "VERSION",
    "Component",
    "Runtime",
    "nats_options",
    "run_main",
    "tune_gc",
]

log = structlog.get_logger("switchboard.runtime")

#: The installed ``switchboard-nats`` version, read once from its metadata (by the
#: ``switchboard`` package): on ``/metrics`` (``switchboard_part_info``), in ``$SRV.INFO``
#: and in the BFF's OpenAPI document.
VERSION: Final = switchboard.__version__


class Component(Protocol):
    """Anything a runtime starts and stops (an Endpoint, an agent worker, a service)."""

    async def start(self) -> None: ...

    async def stop(self, grace: float = ...) -> None: ...


def nats_options(settings: Settings) -> dict[str, Any]:
    """``nats.connect`` keyword arguments for the credentials, TLS and buffers in ``settings``.

    ``pending_size`` is the outbound buffer: eight of the largest messages. Past it a
    publish waits for the buffer to be written (backpressure on the part that sends too
    fast), and while the connection is down, publishes past it fail as ``overloaded``
    instead of piling up in memory until NATS is back.
    """
    options: dict[str, Any] = {
        "inbox_prefix": settings.inbox_prefix,
        "pending_size": 8 * settings.max_payload,
    }
    if settings.nats_creds:
        _readable(settings.nats_creds, "nats_creds")
        options["user_credentials"] = settings.nats_creds
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password or ""
    if settings.nats_token:
        options["token"] = settings.nats_token
    if settings.nats_tls_key and not settings.nats_tls_cert:
        raise ConfigurationError(
            f"{_named('nats_tls_key')} is set without {_named('nats_tls_cert')}: a client "
            "certificate needs both."
        )
    if settings.nats_tls_ca or settings.nats_tls_cert:
        options["tls"] = _tls_context(settings)
    return options


def _tls_context(settings: Settings) -> ssl.SSLContext:
    """Raises ConfigurationError naming the setting whose file is missing or not PEM."""
    for setting in ("nats_tls_ca", "nats_tls_cert", "nats_tls_key"):
        if path := getattr(settings, setting):
            _readable(path, setting)
    try:
        context = ssl.create_default_context(cafile=settings.nats_tls_ca)
    except ssl.SSLError as exc:
        raise _not_pem("nats_tls_ca", "the CA certificates", exc) from exc
    if settings.nats_tls_cert:
        try:
            context.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
        except ssl.SSLError as exc:
            raise _not_pem("nats_tls_cert", "the certificate or its key", exc) from exc
    return context


def _not_pem(setting: str, what: str, exc: ssl.SSLError) -> ConfigurationError:
    return ConfigurationError(
        f"{_named(setting)}: {what} could not be loaded as PEM ({exc.reason or exc})."
    )


def _readable(path: str, setting: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigurationError(
            f"{_named(setting)}: cannot read {path} ({exc.strerror})."
        ) from exc


def _named(setting: str) -> str:
    return f"{env_name(setting)} / {flag_name(setting)}"


class Runtime:
    """Runs the parts of one process until SIGTERM/SIGINT, then shuts them down in order."""

    def __init__(
        self,
        settings: Settings,
        *,
        part: str,
        name: str,
        health: bool = True,
        configure_logs: bool = True,
    ) -> None:
        self.settings = settings
        self.part = part
        self.name = name
        self.subjects = Subjects(settings.subject_prefix)
        self.events = ConnectionEvents()
        self._configure_logs = configure_logs
        self._health_enabled = health
        self._nc: NATS | None = None
        self._requester: Requester | None = None
        self._components: list[Component] = []
        self._checks: dict[str, Callable[[], bool]] = {}
        self._debug: dict[str, Callable[[], Any]] = {}
        self.health: HealthServer | None = None
        self._stop = asyncio.Event()
        self._started = False
        self._traced = False

    # -- wiring -------------------------------------------------------------------------------

    @property
    def nc(self) -> NATS:
        if self._nc is None:
            raise RuntimeError("The runtime is not connected yet: call connect() first.")
        return self._nc

    @property
    def requester(self) -> Requester:
        """The process's one Requester, for the components that send requests.

        Ask for it while wiring, before :meth:`start`, which starts it (and only
        then: a process that sends nothing has no inbox subscription).

        Raises:
            RuntimeError: asked for the first time after the runtime started.
        """
        if self._requester is None:
            if self._started:
                raise RuntimeError(
                    "The requester was first asked for after the runtime started: ask for "
                    "runtime.requester while wiring the components, before start()."
                )
            self._requester = Requester(
                self.nc,
                subjects=self.subjects,
                max_pending=self.settings.max_pending,
                inbox_prefix=self.settings.inbox_prefix,
                events=self.events,
                max_payload=self.settings.max_payload,
            )
            self._debug["/debug/pending"] = lambda: msgspec.to_builtins(self.requester.pending())
        return self._requester

    def add(
        self,
        component: Component,
        *,
        ready: Callable[[], bool] | None = None,
        name: str | None = None,
    ) -> None:
        """Add a component, started in order and stopped in reverse order."""
        self._components.append(component)
        if ready is not None:
            self._checks[name or type(component).__name__] = ready

    def add_debug_view(self, path: str, view: Callable[[], Any]) -> None:
        self._debug[path] = view

    def ready(self) -> bool:
        return self._started and all(check() for check in self._checks.values())

    # -- lifecycle ----------------------------------------------------------------------------

    async def connect(self) -> NATS:
        """Configure logging and connect to NATS (idempotent)."""
        if self._nc is None:
            if self._configure_logs:
                fmt = self.settings.log_format
                configure_logging(
                    self.settings.log_level, json=None if fmt == "auto" else fmt == "json"
                )
                # A process of its own (not a part inside a test): it traces when an OTLP
                # endpoint is configured, and stops tracing when it shuts down.
                self._traced = configure_tracing(
                    self.settings, service=f"switchboard-{self.part}", instance=self.name
                )
            structlog.contextvars.bind_contextvars(part=self.part)
            self._nc = await connect(
                self.settings.nats_servers,
                name=f"switchboard-{self.part}-{self.name}",
                events=self.events,
                **nats_options(self.settings),
            )
            self._checks.setdefault("nats", lambda: self.nc.is_connected)
        return self._nc

    async def start(self) -> None:
        await self.connect()
        PART_INFO.labels(self.part, self.name, VERSION).set(1)
        # Started only when a component asked for it while being wired: a process that sends
        # no requests (an agent) has no inbox, so it subscribes to none, sends its inbox no
        # probes, and needs no inbox permission (deploy/nats/auth.conf gives agents none).
        requester = self._requester
        if requester is not None:
            await requester.start()
            self._checks.setdefault("inbox", lambda: requester.consumer.running)
        for component in self._components:
            await component.start()
        if self._health_enabled:
            self.health = HealthServer(
                host=self.settings.metrics_host,
                port=self.settings.metrics_port,
                checks={"runtime": self.ready, **self._checks},
                debug=self._debug,
            )
            await self.health.start()
        self._started = True
        log.info(
            "ready", name=self.name, metrics=self.health.url + "/metrics" if self.health else None
        )

    async def shutdown(self) -> None:
        """Stop everything in reverse order within the grace period (idempotent).

        Cancelled half-way, it still stops the rest, at once, then re-raises.
        """
        if not self._started and self._nc is None:
            return
        self._started = False
        grace = self.settings.shutdown_grace
        started = time.monotonic()
        log.info("shutting down", name=self.name, grace_s=grace)
        steps: list[Callable[[float], Awaitable[None]]] = [
            functools.partial(self._stop_component, c) for c in reversed(self._components)
        ]
        if self._requester is not None:
            steps.append(self._requester.close)
        try:
            await stop_in_order(grace, *steps)
        finally:
            try:
                await self._close_nats(grace)
            finally:
                if self.health is not None:
                    await self.health.stop()
                    self.health = None
                if self._traced:
                    self._traced = False
                    # The last spans go out (a blocking HTTP post): off the event loop.
                    await asyncio.to_thread(shutdown_tracing)
        log.info("stopped", name=self.name, took_s=round(time.monotonic() - started, 3))

    @staticmethod
    async def _stop_component(component: Component, grace: float) -> None:
        try:
            await component.stop(grace)
        except Exception:  # the others still stop
            log.exception("component failed to stop", component=repr(component))

    async def _close_nats(self, grace: float) -> None:
        nc, self._nc = self._nc, None
        if nc is None or nc.is_closed:
            return
        try:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.drain(), timeout=max(1.0, grace))
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    def request_stop(self) -> None:
        """Ask :meth:`run` to shut down (what SIGTERM and SIGINT do)."""
        self._stop.set()

    async def run(self, on_ready: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start, serve until SIGTERM/SIGINT (or ``request_stop``), then shut down."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
                installed.append(sig)
        orphan_watch = None
        supervisor = os.environ.get(ENV_SUPERVISOR)
        if supervisor and supervisor.isdigit():
            orphan_watch = loop.create_task(self._watch_supervisor(int(supervisor)))
        try:
            await self.start()
            if on_ready is not None:
                await on_ready()
            await self._stop.wait()
        finally:
            try:
                await stop_task(orphan_watch)
            finally:
                try:
                    await self.shutdown()
                finally:
                    for sig in installed:
                        loop.remove_signal_handler(sig)

    async def _watch_supervisor(self, pid: int) -> None:
        """Under ``switchboard up``: stop when the supervisor is gone (never orphaned)."""
        while True:
            await asyncio.sleep(1.0)
            if os.getppid() != pid:
                log.warning("the supervisor is gone; shutting down", supervisor_pid=pid)
                self.request_stop()
                return


#: Allocations between young-generation collections, and the two older generations'
#: ratios. CPython's default (700, 10, 10) has a busy orchestrator collect every couple of
#: conversations, scanning the same long-lived objects each time; measured with
#: ``switchboard bench engine``: about 10% less CPU per conversation at these values.
GC_THRESHOLDS = (20_000, 50, 100)


def tune_gc() -> None:
    """Move everything imported so far out of the collector's sight; collect less often.

    Cyclic garbage is still collected (every :data:`GC_THRESHOLDS` ``[0]`` allocations,
    a few MB at most), so memory stays bounded -- the soak benchmark checks it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_main(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run an async main on uvloop when available, with :func:`tune_gc`; its exit code."""
    tune_gc()
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        loop_factory = None
    runner = asyncio.Runner(loop_factory=loop_factory)
    try:
        code = runner.run(main())
        if runner.run(_stop_leftovers(LEFTOVER_S)):
            # Some task would not end when cancelled (a handler swallowing its cancellation):
            # closing the loop would wait for it forever. Exit without it, as a supervisor's
            # SIGKILL would, but on time and having said so.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    finally:
        runner.close()
    return code


#: Seconds the tasks still running when ``main`` returned have to end once cancelled.
LEFTOVER_S = 1.0


async def _stop_leftovers(timeout: float) -> bool:
    """Cancel the tasks ``main`` left running; True when some would not end in ``timeout``."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    if not leftovers:
        return False
    for task in leftovers:
        task.cancel()
    done, stubborn = await asyncio.wait(leftovers, timeout=timeout)
    for task in done:
        if not task.cancelled():
            task.exception()  # retrieved: what they raised while ending is not news here
    if stubborn:
        log.warning(
            "tasks would not stop when cancelled: exiting without them",
            tasks=sorted(task.get_name() for task in stubborn),
        )
    return bool(stubborn)
