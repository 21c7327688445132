"""``switchboard ask`` and ``switchboard up --nats-url`` from a terminal (real subprocesses)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from switchboard.orchestrator import EmbeddedNatsServer, OrchestratorService
from switchboard.orchestrator.runtime import free_port
from tests.support.up import ROOT, start_up


async def run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchboard",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SWITCHBOARD_LOG_LEVEL": "warning"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_ask_prints_the_answer(
    system: OrchestratorService, nats_server: EmbeddedNatsServer
) -> None:
    code, out, err = await run("ask", "what is 17*23", "--nats-url", nats_server.url)
    assert code == 0, err
    assert out.strip() == "17 * 23 = 391"
    assert "conv-cli-" in err  # the correlation id, for the logs


async def test_ask_streams_progress_and_prints_json(
    system: OrchestratorService, nats_server: EmbeddedNatsServer
) -> None:
    code, out, err = await run(
        "ask",
        "what is 2+2 then count the words of the result",
        "--stream",
        "--json",
        "--user",
        "alice",
        "--nats-url",
        nats_server.url,
    )
    assert code == 0, err
    reply = json.loads(out)
    assert reply["correlation_id"].startswith("conv-alice-")
    assert [s["agent"] for s in reply["steps"]] == ["calculator", "text"]
    events = [line for line in err.splitlines() if line.startswith("[")]
    assert "planned" in events[0]
    assert "answered" in events[-1]


async def test_ask_reports_a_partial_answer_with_exit_code_1(
    system: OrchestratorService, nats_server: EmbeddedNatsServer
) -> None:
    code, out, _ = await run("ask", "what is 2+3; broken please", "--nats-url", nats_server.url)
    assert code == 1
    assert "5" in out


async def test_ask_without_nats_is_a_clear_error() -> None:
    code, _, err = await run("ask", "hi", "--nats-url", "nats://127.0.0.1:1")
    assert code == 1
    assert "Could not connect to NATS at nats://127.0.0.1:1" in err


async def test_settings_never_show_a_password_in_a_url() -> None:
    code, out, _ = await run(
        "settings",
        "--nats-url",
        "nats://bob:hunter2@10.0.0.1:4222,nats://tok3n@10.0.0.2:4222",
        "--openai-base-url",
        "https://user:s3cret@llm.example/v1",
    )
    assert code == 0
    shown = json.loads(out)
    assert shown["nats_url"] == "nats://***@10.0.0.1:4222, nats://***@10.0.0.2:4222"
    assert shown["openai_base_url"] == "https://***@llm.example/v1"
    for secret in ("hunter2", "tok3n", "s3cret"):
        assert secret not in out


async def test_up_never_shows_the_password_of_its_nats_url(
    nats_server: EmbeddedNatsServer,
) -> None:
    url = nats_server.url.replace("nats://", "nats://bob:hunter2@")  # no auth: ignored
    up = await asyncio.to_thread(start_up, "--nats-url", url)
    try:
        assert "NATS         nats://***@127.0.0.1:" in up.output()
    finally:
        assert await asyncio.to_thread(up.stop) == 0
    assert "hunter2" not in up.output()


async def test_up_uses_a_given_nats_server(nats_server: EmbeddedNatsServer) -> None:
    up = await asyncio.to_thread(start_up, "--nats-url", nats_server.url)
    try:
        assert up.nats_url == nats_server.url
        assert "embedded" not in up.output()
        async with httpx.AsyncClient(base_url=up.url, timeout=30) as http:
            r = await http.post("/v1/chat", json={"message": "what is 6*7"})
        assert "42" in r.json()["answer"]
    finally:
        assert await asyncio.to_thread(up.stop) == 0
    assert nats_server.running  # not ours to stop


def test_ctrl_c_while_up_is_starting_starts_nothing_more(tmp_path: Path) -> None:
    # The supervisor went on starting the orchestrator and the BFF after a SIGINT, printed
    # "Switchboard is up", and only then stopped.
    log = tmp_path / "up.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SWITCHBOARD_LOG_LEVEL": "info"}
    env.pop("OPENAI_API_KEY", None)
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "switchboard", "up", "--port", str(free_port())],
            cwd=ROOT,
            env={**env, "SWITCHBOARD_LOG_FORMAT": "json"},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        give_up = time.monotonic() + 60
        while '"part": "agents"' not in log.read_text() and time.monotonic() < give_up:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)  # the agents are starting; nothing else is
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    started = [
        json.loads(line) for line in log.read_text().splitlines() if '"part started"' in line
    ]
    assert proc.returncode == 0, log.read_text()
    assert "Switchboard is up" not in out
    assert [entry["part"] for entry in started] == ["agents"]
    with pytest.raises(ProcessLookupError):
        os.kill(started[0]["pid"], 0)  # stopped and reaped, not left behind
