"""``switchboard ask --stream`` prints the answer as the model writes it (a real subprocess)."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from switchboard.agents import builtin_agents
from switchboard.orchestrator import Settings
from tests.support.fake_openai import Reply
from tests.support.model_server import ModelServer
from tests.support.system import agents_running, orchestrator_running

ANSWER = " ".join(f"word{i}" for i in range(1, 41))


# The fake only: the real model's streaming is shown through NATS and SSE
# (tests/engine/test_token_streaming.py); this shows the client's side.
@pytest.mark.parametrize("model_server", ["fake"], indirect=True)
async def test_ask_stream_prints_the_answer_as_it_comes(
    model_server: ModelServer, settings: Settings
) -> None:
    if model_server.fake is not None:  # 2 s of writing: long enough to be seen half-done
        model_server.fake.default = Reply.text(ANSWER).streamed(0.05)
    llm = model_server.provider()
    async with (
        agents_running(settings, builtin_agents()["llm"], llm=llm),
        orchestrator_running(settings),
    ):
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "switchboard", "ask", "explain what a message broker does"),
            *("--stream", "--nats-url", settings.nats_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "SWITCHBOARD_LOG_LEVEL": "warning"},
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(60):
                first = await proc.stdout.read(4096)  # whatever is written first
                running = proc.returncode is None
                rest, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    await llm.aclose()

    out = (first + rest).decode()
    assert proc.returncode == 0, err.decode()
    answer = out.strip()
    assert answer  # printed once: streamed, not again at the end
    assert out.count(answer) == 1
    assert running  # the first text came while the model was still writing
    assert 0 < len(first.decode().strip()) < len(answer)
    if model_server.fake is not None:
        assert answer == ANSWER
    assert "token" not in err.decode()  # tokens go to stdout, not the progress lines
