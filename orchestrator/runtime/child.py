"""A Switchboard part, or any ``python -m module``, as a child process.

``switchboard up``, the bench and the tests all run parts the same way, and
this module is that way, written once:

- **Spawn** ``python -m MODULE ARGS`` with the environment given, stdin
  closed, in a session of its own: Ctrl-C in a terminal reaches only the
  parent, which stops its children itself (in order, each with its grace).
  With ``watch_parent`` the child also learns the parent's pid
  (:data:`ENV_SUPERVISOR`) and stops when the parent is gone, so even a
  parent killed with SIGKILL leaves nothing running.
- **Output** goes to a log file (stdout and stderr), or is inherited (the
  supervisor's children write to its terminal); with ``pipe`` stdout is read
  line by line into :attr:`ChildProcess.lines` (``switchboard up``'s banner)
  and the pipe is kept drained, so a chatty child never blocks on a full pipe.
- **Ready** when its ``/readyz`` answers 200 (polled over asyncio streams,
  never a blocking call on the loop), or when it prints a given line. A child
  that exits first, or is not ready in time, is an error that quotes the end
  of its log.
- **Stop**: a signal (SIGTERM unless told otherwise), SIGKILL after the
  grace, and always reaped. A caller cancelled while it waits for the stop
  gets its ``CancelledError``, after the child has been killed and reaped:
  nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import structlog

from ..core.errors import ConfigurationError
from ..core.tasks import stop_task
from .httpclient import http_get

__all__ = ["ENV_SUPERVISOR", "ChildProcess", "free_port"]

logger = structlog.get_logger("switchboard.child")

#: The parent's pid, in a child's environment: the child stops when its parent is gone.
ENV_SUPERVISOR = "SWITCHBOARD_SUPERVISOR_PID"

#: How often ``/readyz`` is asked while a child starts, and how long one answer may take.
_POLL_S = 0.05
_PROBE_TIMEOUT_S = 1.0
#: How long the end of a piped output is awaited once the child has exited. The pipe
#: closes when the last process holding it exits: the child itself, normally; a grandchild
#: that outlives it (a part of a killed ``switchboard up``) could hold it longer.
_DRAIN_S = 2.0
#: At most this much of the end of a log is read for :meth:`ChildProcess.log_tail`.
_TAIL_BYTES = 64 * 1024


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now, for a child that must be told its port."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ChildProcess:
    """``python -m module args`` as a child process: start, wait until ready, stop.

    Use it as an async context manager (started and ready inside, stopped on
    the way out, whatever happens), or call :meth:`start`, :meth:`wait_ready`
    and :meth:`stop` yourself -- ``switchboard up`` does, to restart a part
    that exited. ``ready_url`` is the child's ``/readyz``; without it,
    ``ready_line`` (a regular expression) is a line it prints on stdout
    (needs ``pipe``); with neither, it is ready once started.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        module: str = "switchboard",
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        log: Path | None = None,
        pipe: bool = False,
        ready_url: str | None = None,
        ready_line: str | None = None,
        ready_timeout: float = 60.0,
        stop_signal: int = signal.SIGTERM,
        grace: float = 20.0,
        watch_parent: bool = False,
    ) -> None:
        if ready_line is not None and not pipe:
            raise ValueError("ready_line needs pipe=True: the line is read from the pipe")
        self.name = name
        self.argv = [sys.executable, "-m", module, *args]
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.log = log
        self.pipe = pipe
        self.ready_url = ready_url
        self.ready_line = ready_line
        self.ready_timeout = ready_timeout
        self.stop_signal = stop_signal
        self.grace = grace
        self.watch_parent = watch_parent
        #: What it printed on stdout (with ``pipe``), one entry a line, as it comes.
        self.lines: list[str] = []
        #: When it was last started (``time.monotonic()``).
        self.started_at = 0.0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._output: asyncio.Condition | None = None
        self._output_ended = False

    # -- state ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """Its exit code once it has exited (``-N``: killed by signal N), else ``None``."""
        return self._proc.returncode if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def __repr__(self) -> str:
        state = "running" if self.running else f"exit {self.returncode}"
        return f"<ChildProcess {self.name} pid={self.pid} {state}>"

    # -- starting -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn the process (again, after it exited: a restart); returns at once.

        Raises:
            RuntimeError: it is running already.
            OSError: the log cannot be opened, or the process cannot be spawned.
        """
        if self.running:
            raise RuntimeError(f"{self!r} is running already")
        await self._close_reader()  # what was left of an earlier run
        env = dict(self.env)
        if self.watch_parent:
            env[ENV_SUPERVISOR] = str(os.getpid())
        log_file = await asyncio.to_thread(self.log.open, "ab") if self.log is not None else None
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                env=env,
                cwd=self.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if self.pipe else log_file,
                stderr=log_file,
                start_new_session=True,
            )
        finally:
            if log_file is not None:
                log_file.close()  # the child has its own copy
        self.started_at = time.monotonic()
        if self.pipe:
            assert self._proc.stdout is not None
            self.lines = []
            self._output_ended = False
            self._output = asyncio.Condition()
            self._reader = asyncio.get_running_loop().create_task(
                self._read(self._proc.stdout, self._output), name=f"{self.name} stdout"
            )

    async def _read(self, stdout: asyncio.StreamReader, output: asyncio.Condition) -> None:
        try:
            while True:
                try:
                    line = await stdout.readline()
                except ValueError:  # a line over the stream's limit: dropped, the rest still read
                    continue
                if not line:
                    return
                self.lines.append(line.decode(errors="replace").rstrip("\n"))
                async with output:
                    output.notify_all()
        finally:
            self._output_ended = True
            async with output:  # waiters for a line stop waiting
                output.notify_all()

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until it is ready (see the class); ``timeout`` defaults to ``ready_timeout``.

        Raises:
            ConfigurationError: it exited first, or was not ready in time; the
                message quotes the end of its log.
            RuntimeError: it was never started.
        """
        proc = self._started()
        timeout = self.ready_timeout if timeout is None else timeout
        if self.ready_line is not None:
            try:
                await self.wait_for_line(self.ready_line, timeout=timeout)
            except EOFError:
                with contextlib.suppress(TimeoutError):  # its output ended: it is exiting
                    async with asyncio.timeout(_DRAIN_S):
                        await proc.wait()
                raise self._not_ready(
                    f"exited with code {proc.returncode} while starting"
                ) from None
            except TimeoutError:
                raise self._not_ready(f"was not ready after {timeout:.0f}s") from None
            return
        if self.ready_url is None:
            return
        try:
            async with asyncio.timeout(timeout):
                while True:  # an HTTP answer is the only signal there is: poll
                    if await self._answers_ready(proc, self.ready_url):
                        return
                    await asyncio.sleep(_POLL_S)
        except TimeoutError:
            raise self._not_ready(f"was not ready after {timeout:.0f}s") from None

    async def _answers_ready(self, proc: asyncio.subprocess.Process, url: str) -> bool:
        if proc.returncode is not None:
            raise self._not_ready(f"exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError, TimeoutError, ValueError):
            status, _ = await http_get(url, timeout=_PROBE_TIMEOUT_S)
            return status == 200
        return False

    def _not_ready(self, what: str) -> ConfigurationError:
        if self.log is None:
            why = "its log above says why."
        else:
            why = f"its log ends with:\n{self.log_tail()}"
        return ConfigurationError(f"The {self.name} process {what}; {why}")

    async def wait_for_line(self, pattern: str, *, timeout: float) -> re.Match[str]:
        """The first line of its output (:attr:`lines`, from the start) that matches ``pattern``.

        Raises:
            EOFError: its output ended (it exited) without such a line.
            TimeoutError: no such line within ``timeout`` seconds.
            RuntimeError: it was never started, or its stdout is not piped.
        """
        self._started()
        output = self._output
        if output is None:
            raise RuntimeError(f"{self!r} has no piped output to read (pipe=False)")
        compiled = re.compile(pattern)
        seen = 0
        async with asyncio.timeout(timeout), output:
            while True:
                for line in self.lines[seen:]:
                    if match := compiled.search(line):
                        return match
                seen = len(self.lines)
                if self._output_ended:
                    raise EOFError(f"{self.name} printed no line matching {pattern!r}")
                await output.wait()

    # -- stopping -----------------------------------------------------------------------------

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` if it is still running (SIGSTOP and SIGCONT freeze and thaw it)."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    async def wait(self) -> int:
        """Wait until it has exited and its piped output has been read; its exit code.

        Raises:
            RuntimeError: it was never started.
        """
        code = await self._started().wait()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=_DRAIN_S)
        return code

    async def stop(self, grace: float | None = None) -> int | None:
        """Send ``stop_signal``, SIGKILL after ``grace`` (default: the child's), reap.

        Returns its exit code (``None`` if it was never started); a child that
        had exited already is only reaped.

        Raises:
            asyncio.CancelledError: the caller was cancelled; the child has
                been killed and reaped first.
        """
        return await self._end(self.stop_signal, self.grace if grace is None else grace)

    async def kill(self) -> int | None:
        """SIGKILL (what a crash looks like to the others) and reap; its exit code.

        Raises:
            asyncio.CancelledError: the caller was cancelled; the child is reaped first.
        """
        return await self._end(signal.SIGKILL, self.grace)

    async def _end(self, sig: int, grace: float) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.returncode is None:
                self.send_signal(sig)
                try:
                    async with asyncio.timeout(grace):
                        await proc.wait()
                except TimeoutError:
                    logger.warning(
                        "child did not stop in time; killing it", child=self.name, pid=proc.pid
                    )
                    self.send_signal(signal.SIGKILL)
            code = await self.wait()
        except BaseException:  # cancelled while it stops: leave nothing behind
            self.send_signal(signal.SIGKILL)
            await proc.wait()
            await self._close_reader()
            raise
        await self._close_reader()
        return code

    async def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        await stop_task(reader)

    # -- logs and context manager -----------------------------------------------------------

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of its log file (at most 64 KiB are read); "" without one."""
        if self.log is None:
            return ""
        try:
            with self.log.open("rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(0, size - _TAIL_BYTES))
                data = file.read()
        except OSError:
            return ""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def _started(self) -> asyncio.subprocess.Process:
        if self._proc is None:
            raise RuntimeError(f"{self!r} was never started")
        return self._proc

    async def __aenter__(self) -> ChildProcess:
        await self.start()
        try:
            await self.wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
