"""``switchboard bench llm-latency --first-token URL`` through the real CLI, tiny: correctness.

The model server is the ``model_server`` fixture's (the fake, in this process's loop,
or a real one): the bench's parts are real processes streaming from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from switchboard.agents.builtin.assistant import SYSTEM
from switchboard.orchestrator.bench import first_token
from tests.support.model_server import ModelServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def test_first_token_through_the_system_against_the_model_itself(
    model_server: ModelServer,
) -> None:
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("OPENAI_API_KEY", None)
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "switchboard", "bench", "llm-latency"),
        *("--first-token", model_server.base_url, "--llm-model", model_server.model),
        *("--requests", "2", "--json"),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(120):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-3000:]
    (result,) = json.loads(out)
    assert result["mode"] == "llm-first-token"
    assert result["model"] == model_server.model
    assert (result["errors"], result["baseline_errors"], result["sse_errors"]) == (0, 0, 0)
    assert result["requests"] == 2
    for side in ("direct", "nats", "sse"):
        assert result[f"ttft_{side}_p50_ms"] > 0, side
    # The system's first token comes after the model's: it is the model's, relayed.
    assert result["nats_overhead_p50_ms"] == round(
        result["ttft_nats_p50_ms"] - result["ttft_direct_p50_ms"], 1
    )
    assert result["token_messages_per_answer_nats"] >= 1
    if model_server.fake is not None:  # 72 words in 10 ms steps: coalesced into fewer
        assert result["model_chunks_per_answer"] == 72
        assert result["token_messages_per_answer_nats"] < 72
    if model_server.fake is not None:
        assert len(model_server.fake.requests) >= 3 * 3  # warm-up + 2 rounds, 3 ways each
        messages = [r["messages"] for r in model_server.fake.requests]
        assert {m[0]["content"] for m in messages} == {SYSTEM}  # the agent's prompt every way
        questions = [m[1]["content"] for m in messages]
        assert len(set(questions)) == len(questions)  # each a question of its own


def test_the_direct_request_is_the_agents_own_prompt() -> None:
    assert first_token.SYSTEM == SYSTEM  # else a prompt cache favours one side
