"""``switchboard up`` as a real subprocess, for end-to-end tests over real HTTP.

``start_up()`` launches it on a free port and waits for its banner; the
returned :class:`UpProcess` knows the URL, the parts' pids and metrics URLs,
and collects everything the supervisor prints. ``stop()`` sends SIGINT (what
Ctrl-C does) and checks the exit is clean.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
_PART = re.compile(r"^\s+(agents|orchestrator|bff)\s+pid (\d+), metrics (\S+)")


@dataclass
class UpProcess:
    proc: subprocess.Popen[str]
    port: int
    log_path: Path
    lines: list[str] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    nats_url: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return "\n".join(self.lines)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        compiled = re.compile(pattern)
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            for line in list(self.lines):
                match = compiled.search(line)
                if match:
                    return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}; output:\n{self.output()}")

    def stop(self, timeout: float = 40.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("switchboard up did not stop on SIGINT") from None
        return self.proc.returncode


def start_up(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> UpProcess:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="switchboard-up-", suffix=".log")[1])
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SWITCHBOARD_LOG_LEVEL": "info",
        "SWITCHBOARD_SHUTDOWN_GRACE": "5",
        **(env or {}),
    }
    if "OPENAI_API_KEY" not in (env or {}):
        full_env.pop("OPENAI_API_KEY", None)  # offline unless a test asks otherwise
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "switchboard", "up", "--port", str(port), *args],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            start_new_session=True,
        )
    up = UpProcess(proc=proc, port=port, log_path=log)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            up.lines.append(line.rstrip("\n"))
        proc.stdout.close()

    threading.Thread(target=pump, daemon=True).start()
    try:
        up.wait_for_line(r"Press Ctrl-C to stop", timeout=timeout)
    except AssertionError:
        up.stop()
        raise AssertionError(f"switchboard up did not start:\n{up.output()}\n{up.logs()}") from None
    for line in up.lines:
        match = _PART.match(line)
        if match:
            up.pids[match.group(1)] = int(match.group(2))
            up.metrics[match.group(1)] = match.group(3)
        if "NATS" in line and "nats://" in line:
            up.nats_url = line.split()[1]
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
