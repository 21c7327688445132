"""The agent SDK: a few lines make an agent; the worker handles the protocol around it."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client as NATS

from switchboard.agents import Agent, agent, call_agent, load_agents, serving
from switchboard.orchestrator import (
    AgentTask,
    ConfigurationError,
    Deadline,
    ErrorCode,
    NoRespondersError,
    RemoteError,
    Requester,
    encode,
)
from switchboard.orchestrator.core.headers import TIMEOUT
from tests.helpers import metric


@agent("echo", "Repeats its instruction and inputs.", keywords=("echo",))
async def echo(task, ctx):  # type: ignore[no-untyped-def]
    await ctx.progress({"halfway": True})
    return {
        "instruction": task.instruction,
        "inputs": task.inputs,
        "left": round(ctx.time_left()) > 0,
        "correlation_id": ctx.correlation_id,
    }


async def test_an_agent_in_a_few_lines(nats_client: NATS, requester: Requester) -> None:
    async with serving(nats_client, echo):
        result = await call_agent(
            requester, "echo", "hi", inputs={"s0": 41}, correlation_id="conv-me-1"
        )
    assert result.ok
    assert result.output == {
        "instruction": "hi",
        "inputs": {"s0": 41},
        "left": True,
        "correlation_id": "conv-me-1",
    }
    assert result.duration_ms >= 0


async def test_builtin_agents_answer_offline(nats_client: NATS, requester: Requester) -> None:
    async with serving(nats_client, *load_agents(["calculator", "clock", "text"])):
        calc = await call_agent(requester, "calculator", "what is 17*23")
        clock = await call_agent(requester, "clock", "what time is it in UTC")
        text = await call_agent(requester, "text", 'count the words in "a b c"')
    assert calc.output == "17 * 23 = 391"
    assert "UTC" in clock.output
    assert "3 words" in text.output


async def test_an_agent_error_is_a_clear_failure(nats_client: NATS, requester: Requester) -> None:
    async with serving(nats_client, *load_agents(["calculator"])):
        with pytest.raises(RemoteError) as caught:
            await call_agent(requester, "calculator", "what is 1/0")
    assert caught.value.code is ErrorCode.AGENT_ERROR
    assert "zero" in str(caught.value).lower()


async def test_an_output_that_is_not_json_is_reported(
    nats_client: NATS, requester: Requester
) -> None:
    @agent("weird", "Returns something that is not JSON.")
    async def weird(task, ctx):  # type: ignore[no-untyped-def]
        return object()

    async with serving(nats_client, weird):
        with pytest.raises(RemoteError, match="cannot be sent as JSON") as caught:
            await call_agent(requester, "weird", "x")
    assert caught.value.code is ErrorCode.AGENT_ERROR


async def test_an_expired_task_is_dropped_unrun(nats_client: NATS) -> None:
    ran = False

    @agent("late", "Records whether it ran.")
    async def late(task, ctx):  # type: ignore[no-untyped-def]
        nonlocal ran
        ran = True
        return "ran"

    before = metric("switchboard_endpoint_expired_total", endpoint="late")
    async with serving(nats_client, late):
        task = AgentTask(correlation_id="c", task_id="s1", agent="late", instruction="x")
        with pytest.raises(TimeoutError):
            await nats_client.request(
                "ai.agents.late",
                encode(task),
                timeout=0.3,
                headers={TIMEOUT: Deadline.after(-5).header()},
            )
    assert not ran
    assert metric("switchboard_endpoint_expired_total", endpoint="late") == before + 1


async def test_a_stopped_agent_has_no_responders(nats_client: NATS, requester: Requester) -> None:
    async with serving(nats_client, echo):
        pass
    with pytest.raises(NoRespondersError):
        await call_agent(requester, "echo", "anyone?")


async def test_many_tasks_run_at_once(nats_client: NATS, requester: Requester) -> None:
    @agent("nap", "Naps half a second.")
    async def nap(task, ctx):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.5)
        return "rested"

    async with serving(nats_client, nap, max_concurrency=50):
        started = asyncio.get_running_loop().time()
        results = await asyncio.gather(*(call_agent(requester, "nap", "x") for _ in range(50)))
        elapsed = asyncio.get_running_loop().time() - started
    assert all(r.output == "rested" for r in results)
    assert elapsed < 3  # 50 naps of 0.5 s at once, not 25 s


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("teleporter", "Unknown agent 'teleporter'"),
        ("no_such_module:x", "Cannot import 'no_such_module'"),
        ("tests.support.agents:missing", "has no attribute 'missing'"),
        ("tests.support.agents:json", "not an Agent"),
    ],
)
def test_loading_bad_agent_names_is_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_agents([spec])


def test_loading_user_agents_and_all_builtins() -> None:
    assert [a.name for a in load_agents(["tests.support.agents:ALL"])] == [
        "sleepy",
        "upper",
        "broken",
        "whoami",
    ]
    assert {a.name for a in load_agents(["all"])} == {
        "calculator",
        "clock",
        "text",
        "llm",
        "summarizer",
        "trip",
    }


@pytest.mark.parametrize("name", ["a.b", "*", "has space", ""])
def test_agent_names_must_be_subject_safe(name: str) -> None:
    async def handler(task, ctx):  # type: ignore[no-untyped-def]
        return ""

    with pytest.raises(ValueError, match="must be 1-64"):
        Agent(name=name, description="d", handler=handler)


async def test_the_llm_agent_is_honest_offline(nats_client: NATS, requester: Requester) -> None:
    async with serving(nats_client, *load_agents(["llm"])):
        result = await call_agent(requester, "llm", "who wrote the odyssey")
    assert "No language model is configured" in result.output


async def test_the_summarizer_condenses_offline(nats_client: NATS, requester: Requester) -> None:
    text = (
        "NATS is a messaging system. It routes messages by subject. Subjects are strings. "
        "Queue groups spread work across workers. Workers in a queue group share the load. "
        "Request reply uses inboxes. Inboxes are subjects too."
    )
    async with serving(nats_client, *load_agents(["summarizer"])):
        result = await call_agent(requester, "summarizer", "summarize", inputs={"s1": text})
    assert 0 < len(result.output) < len(text)
