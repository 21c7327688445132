"""``switchboard up`` as a real subprocess, for end-to-end tests over real HTTP.

``start_up()`` launches it on a free port and waits for its banner; the
returned :class:`UpProcess` knows the URL, the parts' pids and metrics URLs,
and collects everything the supervisor prints. ``stop()`` sends SIGINT (what
Ctrl-C does) and checks the exit is clean.

The process is a :class:`ChildProcess` (the one way to run a part) driven
from synchronous code: session fixtures and threads use it, and each async
test has an event loop of its own, so the child lives on a loop of its own in
a daemon thread.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from switchboard.orchestrator.core.errors import ConfigurationError
from switchboard.orchestrator.runtime import ChildProcess, free_port
from switchboard.orchestrator.runtime.supervisor import BANNER_END, Banner

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


class _LoopThread:
    """An event loop in a daemon thread: async code, called from synchronous code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.call(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class UpProcess:
    """A running ``switchboard up`` (see the module)."""

    def __init__(self, child: ChildProcess, port: int, home: Path | None = None) -> None:
        self.child = child
        self.port = port
        #: Its own data and state directories, deleted once it stopped.
        self._home = home
        self.pids: dict[str, int] = {}
        self.metrics: dict[str, str] = {}
        self.nats_url = ""
        self._loop: _LoopThread | None = _LoopThread()
        self._code: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def lines(self) -> list[str]:
        """What it printed on stdout, a line an entry, as it comes."""
        return self.child.lines

    @property
    def log_path(self) -> Path:
        assert self.child.log is not None
        return self.child.log

    def output(self) -> str:
        return "\n".join(self.lines)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "switchboard up was stopped"
        return self._loop.call(coroutine)

    def start(self, timeout: float) -> None:
        """Start it and wait for its banner; read the parts from it."""
        try:
            self._call(self.child.start())
            self._call(self.child.wait_ready(timeout))
        except ConfigurationError:
            self.stop()
            raise AssertionError(
                f"switchboard up did not start:\n{self.output()}\n{self.logs()}"
            ) from None
        banner = Banner.parse(self.lines)
        self.pids, self.metrics, self.nats_url = banner.pids, banner.metrics, banner.nats_url

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        try:
            return self._call(self.child.wait_for_line(pattern, timeout=timeout))
        except (EOFError, TimeoutError):
            raise AssertionError(
                f"no line matching {pattern!r}; output:\n{self.output()}"
            ) from None

    def send_signal(self, sig: signal.Signals) -> None:
        async def send() -> None:  # on the child's loop, which owns the process
            self.child.send_signal(sig)

        self._call(send())

    def wait(self, timeout: float) -> int:
        """Its exit code once it exited by itself (all its output read); then it is closed."""
        self._call(asyncio.wait_for(self.child.wait(), timeout))
        return self.stop()

    def stop(self, timeout: float = 40.0) -> int:
        """SIGINT, and its exit code; fails if it needed a SIGKILL after ``timeout`` s."""
        if self._loop is None:
            assert self._code is not None
            return self._code
        was_running = self.child.running
        try:
            code = self._call(self.child.stop(timeout))
        finally:
            self._loop.close()
            self._loop = None
            if self._home is not None:
                shutil.rmtree(self._home, ignore_errors=True)
        assert code is not None
        self._code = code
        if was_running and code == -signal.SIGKILL:
            raise AssertionError("switchboard up did not stop on SIGINT")
        return code


def user_dirs(root: Path) -> dict[str, str]:
    """The environment that gives ``switchboard up`` (and the commands that look for it)
    the data and state directories under ``root``: its store, and the file it is found by."""
    return {"XDG_DATA_HOME": str(root / "data"), "XDG_STATE_HOME": str(root / "state")}


def start_up(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> UpProcess:
    """A ``switchboard up`` on a free port; unless ``env`` says otherwise, with data and state
    directories of its own (each ``up`` has its own store; none is found by the others)."""
    port = free_port()
    fd, log = tempfile.mkstemp(prefix="switchboard-up-", suffix=".log")
    os.close(fd)
    home = Path(tempfile.mkdtemp(prefix="switchboard-up-home-"))
    full_env = {
        **os.environ,
        **user_dirs(home),
        "PYTHONPATH": str(ROOT),
        "SWITCHBOARD_LOG_LEVEL": "info",
        "SWITCHBOARD_SHUTDOWN_GRACE": "5",
        **(env or {}),
    }
    if "OPENAI_API_KEY" not in (env or {}):
        full_env.pop("OPENAI_API_KEY", None)  # offline unless a test asks otherwise
    child = ChildProcess(
        "switchboard up",
        ["up", "--port", str(port), *args],
        env=full_env,
        cwd=ROOT,
        log=Path(log),
        pipe=True,
        ready_line=re.escape(BANNER_END),
        stop_signal=signal.SIGINT,
        grace=40.0,
    )
    owned = not {"XDG_DATA_HOME", "XDG_STATE_HOME"} & set(env or {})
    if not owned:
        home.rmdir()
    up = UpProcess(child, port, home if owned else None)
    up.start(timeout)
    return up


@pytest.fixture(scope="session")
def switchboard_up() -> Iterator[UpProcess]:
    """One ``switchboard up`` for the session: local mode (no keys), offline (no OpenAI key)."""
    up = start_up()
    yield up
    code = up.stop()
    assert code == 0, f"switchboard up exited with {code}:\n{up.output()}"


#: Users of the keyed system: user000..user199 plus alice and bob.
USERS = [f"user{i:03d}" for i in range(200)] + ["alice", "bob"]


def key_for(user: str) -> str:
    return f"key-{user}-0123456789abcdef"


@pytest.fixture(scope="session")
def switchboard_keys() -> Iterator[UpProcess]:
    """``switchboard up`` with an API key per user (see ``USERS`` and ``key_for``)."""
    keys = ",".join(f"{user}:{key_for(user)}" for user in USERS)
    up = start_up(env={"SWITCHBOARD_API_KEYS": keys, "SWITCHBOARD_MAX_INFLIGHT": "400"})
    yield up
    code = up.stop()
    assert code == 0, f"switchboard up exited with {code}:\n{up.output()}"
