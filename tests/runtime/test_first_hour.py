"""``switchboard up`` as a new user meets it: NATS where the docs say, found by every
command with no flags, history that survives a restart, a banner that comes first."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchboard.orchestrator.runtime import free_port, load_settings
from switchboard.orchestrator.runtime.supervisor import BANNER_END, NATS_PORT, Supervisor
from tests.support.up import ROOT, start_up, user_dirs


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    for name in ("NATS_URL", "SWITCHBOARD_NATS_URL", "OPENAI_API_KEY"):
        env.pop(name, None)
    return env


@pytest.fixture
def nats_port_taken() -> Iterator[None]:
    """Port 4222 in use: by this socket, or already by something else."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", NATS_PORT))
        holder.listen()
    except OSError:
        pass  # taken already
    try:
        yield
    finally:
        holder.close()


def test_the_embedded_server_takes_the_usual_port_when_it_is_free() -> None:
    assert NATS_PORT == 4222
    wanted = free_port()
    supervisor = Supervisor(load_settings({}), host="127.0.0.1", port=0, nats_url=None)
    supervisor.nats_port = wanted
    server = supervisor._start_embedded()
    try:
        assert server.port == wanted
    finally:
        server.cleanup()


def test_when_4222_is_taken_the_banner_says_which_port_and_what_to_paste(
    nats_port_taken: None,
) -> None:
    up = start_up()
    try:
        assert up.nats_url.startswith("nats://127.0.0.1:")
        assert not up.nats_url.endswith(":4222")
        output = up.output()
        assert f"NATS         {up.nats_url} (embedded, JetStream on; port 4222 was taken)" in output
        assert f"export NATS_URL={up.nats_url}" in output
    finally:
        assert up.stop() == 0


def _switchboard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        env=_env(**env, SWITCHBOARD_LOG_LEVEL="warning"),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ask_finds_the_running_up_with_no_flags(tmp_path: Path) -> None:
    # It tried nats://127.0.0.1:4222: six "Connection refused" warnings, then a failure.
    dirs = user_dirs(tmp_path)
    up = start_up(env=dirs)
    try:
        asked = _switchboard("ask", "what is 6*7", env=dirs)
        assert asked.returncode == 0, asked.stderr
        assert asked.stdout.strip() == "6 * 7 = 42"
        shown = _switchboard("settings", env=dirs)
        assert f'"nats_url": "{up.nats_url}"' in shown.stdout
    finally:
        assert up.stop() == 0
    # Once it stopped, nothing points at it any more.
    after = _switchboard("settings", env=dirs)
    assert '"nats_url": "nats://127.0.0.1:4222"' in after.stdout


async def test_conversations_survive_a_restart_of_up(tmp_path: Path) -> None:
    data = tmp_path / "store"
    up = await asyncio.to_thread(start_up, "--data-dir", str(data))
    try:
        assert f"data         {data} (history is kept across restarts)" in up.output()
        async with httpx.AsyncClient(base_url=up.url, timeout=30) as http:
            r = await http.post(
                "/v1/chat", json={"message": "what is 6*7", "conversation_id": "kept"}
            )
            assert r.status_code == 200, r.text
    finally:
        assert await asyncio.to_thread(up.stop) == 0

    again = await asyncio.to_thread(start_up, "--data-dir", str(data))
    try:
        async with httpx.AsyncClient(base_url=again.url, timeout=30) as http:
            history = await http.get("/v1/conversations/kept")
        assert history.status_code == 200, history.text
        turns = history.json()["turns"]
        assert [turn["message"] for turn in turns] == ["what is 6*7"]
        assert "42" in turns[0]["answer"]
    finally:
        assert await asyncio.to_thread(again.stop) == 0


async def test_ephemeral_keeps_nothing_in_the_data_dir(tmp_path: Path) -> None:
    dirs = user_dirs(tmp_path)
    up = await asyncio.to_thread(start_up, "--ephemeral", env=dirs)
    try:
        assert "data         a temporary directory, deleted on exit (--ephemeral)" in up.output()
        async with httpx.AsyncClient(base_url=up.url, timeout=30) as http:
            r = await http.post("/v1/chat", json={"message": "what is 1+1"})
            assert r.status_code == 200
    finally:
        assert await asyncio.to_thread(up.stop) == 0
    assert not (tmp_path / "data" / "switchboard").exists()


def test_the_default_store_is_the_users_data_dir(tmp_path: Path) -> None:
    dirs = user_dirs(tmp_path)
    up = start_up(env=dirs)
    try:
        store = tmp_path / "data" / "switchboard" / "jetstream"
        assert f"data         {store} (history is kept across restarts)" in up.output()
        assert store.is_dir()
        # A second `up` on the same store is refused, saying why.
        second = subprocess.run(
            [sys.executable, "-m", "switchboard", "up", "--port", str(free_port())],
            env=_env(**dirs), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 2
        assert "switchboard up is already running" in second.stderr
        assert "--data-dir" in second.stderr
    finally:
        assert up.stop() == 0


def test_up_prints_its_banner_first_when_stdout_is_not_a_terminal(tmp_path: Path) -> None:
    # About 14 JSON log lines came before the banner.
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard", "up", "--ephemeral", "--port", str(free_port())],
        env=_env(**user_dirs(tmp_path)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if BANNER_END in line:
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert lines[-1] == BANNER_END, lines
    assert lines[1].startswith("Switchboard is up"), lines
    assert not [line for line in lines if line.lstrip().startswith("{")]
    assert proc.returncode == 0
    assert rest.strip().splitlines()[-1] == "switchboard: stopped"


def test_a_start_up_error_is_not_preceded_by_stopped(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "switchboard", "up", "--ephemeral", "--port", str(port)],
            env=_env(**user_dirs(tmp_path)), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "stopped" not in result.stdout + result.stderr


def test_ask_with_no_nats_says_so_once(tmp_path: Path) -> None:
    # Six "nats async error ... Connection refused" warnings came before the error.
    port = free_port()  # nothing listens there
    asked = _switchboard(
        "ask", "hi", "--nats-url", f"nats://127.0.0.1:{port}", env=user_dirs(tmp_path)
    )
    assert asked.returncode == 1
    assert asked.stderr.strip().splitlines() == [
        f"error: Could not connect to NATS at nats://127.0.0.1:{port}: NoServersError: nats: no "
        "servers available for connection."
    ]
