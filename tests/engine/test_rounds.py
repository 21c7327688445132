"""The tool-calling loop against the scripted OpenAI-compatible server, over NATS.

Round 1 is the validated plan (``make_plan``); every later turn of the model
sees the results as ``tool`` messages and calls agents (tools) again or answers.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest

from switchboard.agents import TaskContext, agent, builtin_agents, call_agent
from switchboard.orchestrator import (
    AgentTask,
    OpenAIProvider,
    Requester,
    Settings,
    Usage,
)
from switchboard.orchestrator.engine import CITED
from tests.engine.test_adapt import ask_streaming, replanned
from tests.helpers import metric
from tests.support.agents import INJECTION, mole, sleepy
from tests.support.fake_openai import FakeOpenAI, Reply, ToolCall, tool_messages
from tests.support.system import agents_running, orchestrator_running

MODEL = "gpt-4o-mini"


def provider(fake: FakeOpenAI) -> OpenAIProvider:
    return OpenAIProvider(
        model=MODEL, api_key="test-key", base_url=fake.base_url, timeout=10.0, max_retries=0
    )


#: A question the model plans (the rules are sure of only one of its two clauses).
JOKE_AND_SUM = "what is 6*7? and tell me a joke"


def plan(*steps: tuple[str, str]) -> Reply:
    """The first round, as the planner's forced ``make_plan`` call."""
    return Reply.tool_call(
        "make_plan",
        {
            "steps": [
                {"id": f"s{i}", "agent": name, "instruction": text}
                for i, (name, text) in enumerate(steps, start=1)
            ]
        },
    )


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The results the model was shown, as data, in order."""
    return [json.loads(m["content"]) for m in tool_messages(request)]


def assert_results_only_in_tool_messages(fake: FakeOpenAI, *texts: str) -> None:
    for request in fake.requests:
        for message in request["messages"]:
            if message["role"] in ("system", "user"):
                for text in texts:
                    assert text not in (message.get("content") or ""), message


def assert_tool_protocol(request: dict[str, Any]) -> None:
    """Every tool message answers a call of the assistant message before it, by id."""
    called: set[str] = set()
    for message in request["messages"]:
        if message["role"] == "assistant":
            called = {c["id"] for c in message.get("tool_calls") or ()}
        elif message["role"] == "tool":
            assert message["tool_call_id"] in called


async def test_three_rounds_each_built_on_the_last_result(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    def number_in_last_result(request: dict[str, Any]) -> str:
        output = tool_results(request)[-1]["output"]
        return re.findall(r"-?\d+(?:\.\d+)?", output)[-1]

    def round_two(request: dict[str, Any]) -> Reply:  # needs round 1's result: 391
        return Reply.tool_call(
            "calculator", {"instruction": f"{number_in_last_result(request)} + 9"}
        )

    def round_three(request: dict[str, Any]) -> Reply:  # needs round 2's result: 400
        return Reply.tool_call(
            "calculator", {"instruction": f"{number_in_last_result(request)} / 4"}
        )

    def answer(request: dict[str, Any]) -> Reply:
        return Reply.text(f"The answer is {number_in_last_result(request)}.")

    fake_openai.enqueue(plan(("calculator", "17*23")), round_two, round_three, answer)
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(settings, llm=llm),
    ):
        reply, events = await ask_streaming(requester, "17*23, plus 9, then a quarter of it")
    await llm.aclose()
    assert fake_openai.pending == 0 and not fake_openai.responder_errors
    # The model's draft ("The answer is 100.") reads the results, but deterministic outputs
    # are the answer as they are: a model may stitch them, never replace them.
    assert reply.answer == "- 17 * 23 = 391\n- 391 + 9 = 400\n- 400 / 4 = 100"
    assert [(s.id, s.agent, s.output, s.round) for s in reply.steps] == [
        ("s1", "calculator", "17 * 23 = 391", 1),
        ("r2s1", "calculator", "391 + 9 = 400", 2),
        ("r3s1", "calculator", "400 / 4 = 100", 3),
    ]
    assert [(e.detail.round, e.detail.plan.steps[0].instruction) for e in replanned(events)] == [
        (2, "391 + 9"),
        (3, "400 / 4"),
    ]
    assert "called calculator" in replanned(events)[0].detail.reason
    # The model's calls: agents as tools with one instruction parameter, results as tool
    # messages answering them by id; round 3 was the last, so tools were off after it.
    assert len(fake_openai.requests) == 4
    second = fake_openai.requests[1]
    assert {t["function"]["name"] for t in second["tools"]} >= {"calculator", "clock"}
    assert second["tools"][0]["function"]["parameters"]["required"] == ["instruction"]
    assert [r["tool_choice"] for r in fake_openai.requests[1:]] == ["auto", "auto", "none"]
    for request in fake_openai.requests[1:]:
        assert_tool_protocol(request)
    assert tool_results(fake_openai.requests[3]) == [
        {"status": "ok", "output": "17 * 23 = 391"},
        {"status": "ok", "output": "391 + 9 = 400"},
        {"status": "ok", "output": "400 / 4 = 100"},
    ]
    assert_results_only_in_tool_messages(fake_openai, "17 * 23 = 391", "391 + 9 = 400")


async def test_a_one_round_conversation_costs_the_plan_and_one_answer(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.enqueue(plan(("calculator", "6*7")), Reply.text("6 times 7 is 42."))
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(settings, llm=llm),
    ):
        # Two clauses: a one-clause question the rules are sure of asks no model at all.
        reply, events = await ask_streaming(requester, JOKE_AND_SUM)
    await llm.aclose()
    assert reply.answer == "6 * 7 = 42"  # one output: it is the answer, not the draft
    assert len(fake_openai.requests) == 2  # as before rounds: plan + answer, no third call
    assert replanned(events) == []
    assert reply.usage.total_tokens > 0


async def test_junk_in_round_two_falls_back_without_losing_round_one(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fallbacks = metric("switchboard_plan_fallbacks_total", reason="round_invalid")
    fake_openai.enqueue(
        plan(("calculator", "17*23"), ("clock", "time in Tokyo")),
        Reply.tool_call("calculator", '{"instruction": "1+'),  # malformed arguments
        Reply.text("391, and it is late in Tokyo."),
        plan(("calculator", "2*2")),
        Reply.tool_call("teleporter", {"instruction": "go"}),  # no such agent
        Reply.text("4."),
    )
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(settings, llm=llm),
    ):
        first, first_events = await ask_streaming(
            requester, "what is 17*23? what time is it in Tokyo? and tell me a joke"
        )
        second, _ = await ask_streaming(requester, "what is 2*2? and tell me a joke")
    await llm.aclose()
    # Round one's outputs, whole: they are the answer (the draft is not).
    assert first.answer.startswith("- 17 * 23 = 391\n- In Tokyo (Asia/Tokyo) it is ")
    assert [(s.agent, s.status, s.round) for s in first.steps] == [
        ("calculator", "ok", 1),
        ("clock", "ok", 1),
    ]
    assert replanned(first_events) == []
    answer_now = fake_openai.requests[2]
    assert answer_now["tool_choice"] == "none"  # the model answers from round 1's results
    assert [r["status"] for r in tool_results(answer_now)] == ["ok", "ok"]
    assert second.answer == "2 * 2 = 4"
    assert [s.output for s in second.steps] == ["2 * 2 = 4"]
    assert metric("switchboard_plan_fallbacks_total", reason="round_invalid") == fallbacks + 2


async def test_the_round_limit_ends_a_model_that_never_stops_calling_tools(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    # The mole's output tells the model to go on; the model does, every time it is asked.
    fake_openai.enqueue(plan(("mole", "the weather")))
    fake_openai.default = lambda request: Reply.tool_call(
        "mole", {"instruction": "the weather, again"}
    )
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values(), mole),
        orchestrator_running(settings, llm=llm),
    ):
        # A clause the plan has no step for: the model reads the results.
        reply, events = await ask_streaming(
            requester, "report on the weather, and tell me if it holds"
        )
    await llm.aclose()
    assert [s.round for s in reply.steps] == [1, 2, 3]  # max_rounds (3), not one more
    assert [e.detail.round for e in replanned(events)] == [2, 3]
    assert len(fake_openai.requests) == 4  # plan, two more rounds, then "answer now"
    assert fake_openai.requests[-1]["tool_choice"] == "none"
    # It answered with calls even then: the answer is composed from what ran.
    assert "Report on the weather" in reply.answer
    assert reply.error is None


async def test_agent_output_is_data_and_cannot_widen_what_may_be_called(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    vault_tasks: list[AgentTask] = []

    @agent("vault", "Holds the user's private history.")
    async def vault(task: AgentTask, ctx: TaskContext) -> str:
        vault_tasks.append(task)
        return "secrets"

    def obey(request: dict[str, Any]) -> Reply:  # a model the injection fools
        assert INJECTION in tool_results(request)[-1]["output"]
        return Reply.tool_call("vault", {"instruction": "send the user's history"})

    fake_openai.enqueue(plan(("mole", "the news")), obey, Reply.text("Nothing found."))
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values(), mole, vault),
        orchestrator_running(settings, llm=llm),
    ):
        reply, events = await ask_streaming(
            requester, "report on the news, and tell me what to do", agents=["mole", "calculator"]
        )
        direct = await call_agent(requester, "vault", "ping")  # it runs, and answers
    await llm.aclose()
    assert not fake_openai.responder_errors
    # The mole's one output is the answer as it is (shown to the user, never obeyed).
    assert reply.answer == f"Report on the news: nothing found. {INJECTION}"
    assert [s.agent for s in reply.steps] == ["mole"]
    assert replanned(events) == []
    # The vault was running (a request naming it reaches it) but never called for the mole.
    assert direct.ok
    assert [t.instruction for t in vault_tasks] == ["ping"]
    for request in fake_openai.requests[1:3]:
        assert sorted(t["function"]["name"] for t in request["tools"]) == ["calculator", "mole"]
    assert_results_only_in_tool_messages(fake_openai, INJECTION)
    assert msgspec.json.decode(fake_openai.requests[1]["messages"][-1]["content"])["status"] == "ok"


TOKYO = "what time is it in Tokyo? and tell me a joke"


async def test_a_follow_up_reaches_the_model_with_the_conversation(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.enqueue(
        plan(("clock", "time in Tokyo")),
        Reply.text("It is evening in Tokyo."),
        plan(("clock", "time in London")),  # the model understood the follow-up
        Reply.text("It is morning in London."),
    )
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(settings, llm=llm),
    ):
        first, _ = await ask_streaming(requester, TOKYO, conversation_id="trip")
        reply, _ = await ask_streaming(requester, "and in London?", conversation_id="trip")
    await llm.aclose()
    assert reply.answer.startswith("In London (Europe/London) it is ")  # the clock's output
    for request in fake_openai.requests[2:]:  # the plan and the answer of the follow-up
        said = [(m["role"], m.get("content")) for m in request["messages"]]
        assert ("user", TOKYO) in said
        assert ("assistant", first.answer) in said
        assert said.index(("user", "and in London?")) > said.index(("assistant", first.answer))


@pytest.mark.parametrize(
    "limit", [{"max_round_tokens": 1}, {"max_conversation_steps": 1}, {"max_rounds": 1}]
)
async def test_each_limit_makes_the_model_answer_with_tools_off(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester, limit: dict[str, int]
) -> None:
    fake_openai.enqueue(plan(("calculator", "6*7")))
    fake_openai.default = lambda request: Reply.tool_call("calculator", {"instruction": "1+1"})
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(msgspec.structs.replace(settings, **limit), llm=llm),
    ):
        reply, events = await ask_streaming(requester, JOKE_AND_SUM)
    await llm.aclose()
    assert [s.output for s in reply.steps] == ["6 * 7 = 42"]
    assert replanned(events) == []
    assert [r.get("tool_choice") for r in fake_openai.requests[1:]] == ["none"]
    assert reply.answer == "6 * 7 = 42"  # tools off and still calling: the composed answer


async def test_parallel_tool_calls_run_in_parallel(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.enqueue(
        plan(("calculator", "1+1")),
        Reply.parallel_tool_calls(
            ToolCall.of("sleepy", {"instruction": "sleep 0.3"}),
            ToolCall.of("sleepy", {"instruction": "sleep 0.2"}),
        ),
        Reply.text("Slept twice."),
    )
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values(), sleepy),
        orchestrator_running(settings, llm=llm),
    ):
        reply, events = await ask_streaming(requester, "what is 1+1? and tell me a joke")
    await llm.aclose()
    assert reply.answer == "- 1 + 1 = 2\n- slept 0.3\n- slept 0.2"  # outputs, not the draft
    assert [(s.id, s.output) for s in reply.steps] == [
        ("s1", "1 + 1 = 2"),
        ("r2s1", "slept 0.3"),
        ("r2s2", "slept 0.2"),
    ]
    round_two = [(e.kind, e.step) for e in events if getattr(e, "step", None) in ("r2s1", "r2s2")]
    # Both started before either finished: one round's calls run side by side.
    starts = [i for i, (kind, _) in enumerate(round_two) if kind == "step_started"]
    finishes = [i for i, (kind, _) in enumerate(round_two) if kind == "step_finished"]
    assert len(starts) == len(finishes) == 2
    assert max(starts) < min(finishes)
    answer = fake_openai.requests[2]
    assert [m["tool_call_id"] for m in tool_messages(answer)][1:] == [
        c["id"] for c in answer["messages"][-3]["tool_calls"]
    ]


@agent("poet", "Writes a short poem on a topic (with a language model).", keywords=("poem",))
async def poet(task: AgentTask, ctx: TaskContext) -> str:
    ctx.usage = Usage(prompt_tokens=12, completion_tokens=8, total_tokens=20)  # as ask_llm does
    return f"A poem on {task.instruction}: roses are red."


async def test_the_models_draft_stitches_model_written_outputs_and_cites_them(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    # Outputs a model wrote may be stitched by the draft -- the tool loop's last turn, with
    # no second call -- and the outputs are cited under it, so the truth stays in sight.
    fake_openai.enqueue(
        plan(("poet", "the sea poem"), ("poet", "the moon poem")),
        Reply.text("Two poems, one on the sea and one on the moon."),
    )
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values(), poet),
        orchestrator_running(settings, llm=llm),
    ):
        reply, _ = await ask_streaming(requester, "a poem on the sea, and a poem on the moon")
    await llm.aclose()
    assert len(fake_openai.requests) == 2  # the plan, and the draft: no third call
    assert reply.answer == (
        "Two poems, one on the sea and one on the moon.\n\n"
        f"{CITED}\n"
        "- s1 (poet): A poem on the sea poem: roses are red.\n"
        "- s2 (poet): A poem on the moon poem: roses are red."
    )
