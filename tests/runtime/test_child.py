"""One way to run a part as a child process: ready, stopped, killed, never left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from switchboard.orchestrator import EmbeddedNatsServer
from switchboard.orchestrator.core.errors import ConfigurationError
from switchboard.orchestrator.runtime import ChildProcess, free_port, http_get
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]


def gone(pid: int | None) -> bool:
    """True when no process ``pid`` exists any more (exited and reaped)."""
    assert pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def stubborn(
    tmp_path: Path, *, grace: float, ready_line: str = "^ready$", ready_timeout: float = 30.0
) -> ChildProcess:
    """``python -m tests.support.stubborn``: prints "ready", ignores SIGTERM."""
    return ChildProcess(
        "stubborn",
        [],
        module="tests.support.stubborn",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        log=tmp_path / "stubborn.log",
        pipe=True,
        ready_line=ready_line,
        ready_timeout=ready_timeout,
        grace=grace,
    )


async def test_a_part_becomes_ready_then_stops_cleanly_on_sigterm(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_NATS_URL": nats_server.url,
        "SWITCHBOARD_METRICS_HOST": "127.0.0.1",
        "SWITCHBOARD_METRICS_PORT": str(port),
    }
    child = ChildProcess(
        "calculator",
        ["agent", "calculator"],
        env=env,
        log=tmp_path / "calculator.log",
        ready_url=f"http://127.0.0.1:{port}/readyz",
    )
    async with child:
        assert child.running
        status, _ = await http_get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200
        pid = child.pid
    assert child.returncode == 0, child.log_tail()
    assert gone(pid)


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    async with stubborn(tmp_path, grace=0.5) as child:
        pid = child.pid
        assert child.lines == ["ready"]
        started = time.monotonic()
        code = await child.stop()
        took = time.monotonic() - started
    assert code == -signal.SIGKILL
    assert 0.5 <= took < 5.0, took
    assert gone(pid)


async def test_a_child_that_crashes_at_start_gives_the_end_of_its_log(
    tmp_path: Path,
) -> None:
    port = free_port()
    child = ChildProcess(
        "agents",
        ["agent", "no_such_agent"],
        log=tmp_path / "agents.log",
        ready_url=f"http://127.0.0.1:{port}/readyz",
    )
    with pytest.raises(ConfigurationError) as raised:
        async with child:
            raise AssertionError("a child that exits at start is never ready")
    message = str(raised.value)
    assert message.startswith("The agents process exited with code 2 while starting;"), message
    assert "Unknown agent 'no_such_agent'" in message  # its log, quoted
    assert gone(child.pid)


async def test_a_child_not_ready_in_time_is_stopped(tmp_path: Path) -> None:
    child = stubborn(tmp_path, grace=0.2, ready_line="^never printed$", ready_timeout=1.0)
    with pytest.raises(ConfigurationError, match=r"stubborn process was not ready after 1s"):
        async with child:
            raise AssertionError("never ready")
    assert child.returncode == -signal.SIGKILL
    assert gone(child.pid)


async def test_the_caller_cancelled_while_stopping_gets_cancelled_and_no_process_is_left(
    tmp_path: Path,
) -> None:
    child = stubborn(tmp_path, grace=60.0)
    await child.start()
    await child.wait_ready()
    pid = child.pid
    stopping = asyncio.create_task(child.stop())
    await asyncio.sleep(0.3)  # SIGTERM sent and ignored: it waits out the grace
    assert not stopping.done()
    assert child.running
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert child.returncode == -signal.SIGKILL
    assert gone(pid)


async def test_a_child_exited_by_itself_is_restarted_by_start(tmp_path: Path) -> None:
    child = stubborn(tmp_path, grace=0.2)
    async with child:
        first = child.pid
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
        await child.start()
        await child.wait_ready()
        assert child.running
        assert child.pid != first
        assert child.lines == ["ready"]
    assert gone(first)
    assert gone(child.pid)


#: A parent that starts a calculator part watching it, prints the part's pid, then waits.
PARENT = """
import asyncio, sys
from switchboard.orchestrator.runtime import ChildProcess

async def main():
    child = ChildProcess("calculator", ["agent", "calculator"], watch_parent=True)
    await child.start()
    print(child.pid, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_a_child_that_watches_its_parent_stops_when_the_parent_is_killed(
    nats_server: EmbeddedNatsServer,
) -> None:
    env = {**os.environ, "SWITCHBOARD_NATS_URL": nats_server.url, "SWITCHBOARD_METRICS_PORT": "0"}
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        async with asyncio.timeout(30):
            part = int(await parent.stdout.readline())
    finally:
        parent.kill()  # no chance to stop its child: only the child's own watch can
        await parent.wait()
    # It looks every second, then shuts down within its grace (10 s by default).
    await eventually(lambda: gone(part), timeout=20, interval=0.1)
