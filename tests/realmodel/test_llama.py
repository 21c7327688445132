"""Against a real model: llama.cpp's server, SmolLM2-135M-Instruct, the real ``openai`` client.

No fake here: what the model says is not known in advance, so the tests
assert what Switchboard guarantees whatever it says -- a plan inside the
schema, a deadline kept, an answer never worse than the agents' results.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from switchboard.agents import builtin_agents
from switchboard.orchestrator import ChatMessage, Deadline, LLMError, Requester, Settings
from switchboard.orchestrator.engine import CITED, LLMPlanner, validate_plan
from switchboard.orchestrator.engine.planner import plan_schema
from switchboard.orchestrator.llm.local import OFFLINE_ANSWER
from tests.support.llama import LlamaServer
from tests.support.system import agents_running, converse, orchestrator_running
from tests.support.system import builtin_catalog as catalog
from tests.support.up import start_up


async def test_a_plain_answer(llama_server: LlamaServer) -> None:
    llm = llama_server.provider()
    completion = await llm.complete(
        [ChatMessage("user", "What is the capital of France? One word.")], max_tokens=16
    )
    await llm.aclose()
    assert completion.text.strip()
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0


async def test_a_plan_by_tool_call_stays_inside_the_schema(llama_server: LlamaServer) -> None:
    """The server's grammar follows the plan request: only catalog agents, s1.. ids, at most
    max_steps steps, instructions not empty -- whatever the model means by them."""
    agents = catalog()
    llm = llama_server.provider()
    schema = plan_schema(tuple(sorted(agents)), 3)
    draft, usage = await llm.structured(
        [
            ChatMessage("system", "You plan work for agents: " + ", ".join(sorted(agents))),
            ChatMessage("user", "what is 17*23, and what time is it in Tokyo?"),
        ],
        schema,
        name="make_plan",
        description="The plan: the steps, their agents, instructions and dependencies.",
    )
    await llm.aclose()
    assert 1 <= len(draft.steps) <= 3
    for step in draft.steps:
        assert step.agent in agents
        assert step.id.startswith("s")
        assert step.id[1:].isdigit()
        assert step.instruction
    assert usage.completion_tokens > 0


async def test_the_planner_with_the_real_model_returns_a_runnable_plan(
    llama_server: LlamaServer,
) -> None:
    agents = catalog()
    llm = llama_server.provider()
    plan, _ = await LLMPlanner(llm).plan(
        "what is 17*23, and what time is it in Tokyo?", agents, max_steps=2
    )
    await llm.aclose()
    validate_plan(plan, agents, max_steps=2)
    # Whatever the model meant, the rules saw two tools for sure: both are in the plan.
    assert {"calculator", "clock"} <= {s.agent for s in plan.steps}


async def test_a_deadline_is_kept_against_the_real_server(llama_server: LlamaServer) -> None:
    llm = llama_server.provider(timeout=30.0)
    started = time.monotonic()
    with pytest.raises(LLMError, match="did not answer"):
        await llm.complete(
            [ChatMessage("user", "Tell me a long story about a lighthouse keeper.")],
            deadline=Deadline.after(0.05),
            max_tokens=32,
        )
    assert time.monotonic() - started < 10  # generous: the deadline was 0.05 s
    # The server still answers the next caller.
    completion = await llm.complete([ChatMessage("user", "Say hi.")], max_tokens=8)
    await llm.aclose()
    assert completion.text


async def test_a_conversation_answers_as_well_as_the_rules_whatever_the_model_plans(
    llama_server: LlamaServer, settings: Settings, requester: Requester
) -> None:
    llm = llama_server.provider()
    async with (
        agents_running(settings, *builtin_agents().values(), llm=llm),
        orchestrator_running(settings, llm=llm),
    ):
        reply = await converse(
            requester, "what is 17*23, and what time is it in Tokyo?", timeout=60
        )
        shout = await converse(requester, "uppercase hello world", timeout=60)
    await llm.aclose()
    assert not reply.partial
    assert "17 * 23 = 391" in reply.answer.split(CITED)[0] or "17 * 23 = 391" in reply.answer
    assert "Tokyo" in reply.answer
    assert shout.answer == "HELLO WORLD"


def test_switchboard_up_local_model_answers_end_to_end() -> None:
    up = start_up("--local-model", timeout=120)
    try:
        banner = up.output()
        assert "SmolLM2-135M-Instruct (bundled)" in banner

        async def ask() -> tuple[str, str]:
            async with httpx.AsyncClient(base_url=up.url, timeout=90) as http:
                sums = await http.post("/v1/chat", json={"message": "what is 17*23"})
                poem = await http.post(
                    "/v1/chat", json={"message": "write one short sentence about the sea"}
                )
            assert sums.status_code == 200, sums.text
            assert poem.status_code == 200, poem.text
            return sums.json()["answer"], poem.json()["answer"]

        sums, poem = asyncio.run(ask())
    finally:
        code = up.stop()
    assert code == 0
    assert sums == "17 * 23 = 391"
    assert poem.strip()
    assert poem != OFFLINE_ANSWER  # a model answered, not the offline rules
