"""The real openai client against a local OpenAI-compatible server: plans, retries, failures."""

from __future__ import annotations

import time

import pytest

from switchboard.agents import builtin_agents
from switchboard.orchestrator import (
    ChatMessage,
    Deadline,
    LLMError,
    OpenAIProvider,
    OrchestratorService,
    Plan,
    Requester,
    Settings,
)
from switchboard.orchestrator.engine import LLMPlanner
from tests.helpers import metric
from tests.support.agents import ALL as TEST_AGENTS
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.system import agents_running, converse, orchestrator_running
from tests.support.system import builtin_catalog as catalog

MODEL = "gpt-4o-mini"


def provider(fake: FakeOpenAI, **options: object) -> OpenAIProvider:
    options.setdefault("max_retries", 2)
    options.setdefault("timeout", 10.0)
    return OpenAIProvider(model=MODEL, api_key="test-key", base_url=fake.base_url, **options)  # type: ignore[arg-type]


PLAN = {
    "steps": [
        {"id": "s1", "agent": "calculator", "instruction": "17*23"},
        {"id": "s2", "agent": "clock", "instruction": "time in Tokyo"},
        {
            "id": "s3",
            "agent": "summarizer",
            "instruction": "summarize",
            "depends_on": ["s1", "s2"],
            "required": False,
        },
    ]
}


async def test_the_planner_gets_a_plan_through_a_tool_call(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply.tool_call("make_plan", PLAN))
    llm = provider(fake_openai)
    plan, usage = await LLMPlanner(llm).plan("17*23 and Tokyo time", catalog(), max_steps=8)
    await llm.aclose()
    assert plan.source == "llm"
    assert [(s.id, s.agent, s.depends_on, s.required) for s in plan.steps] == [
        ("s1", "calculator", [], True),
        ("s2", "clock", [], True),
        ("s3", "summarizer", ["s1", "s2"], False),
    ]
    assert usage.total_tokens > 0
    sent = fake_openai.requests[0]
    assert sent["model"] == MODEL
    assert sent["tool_choice"]["function"]["name"] == "make_plan"
    assert "calculator" in sent["messages"][0]["content"]  # the catalog is in the prompt


async def test_rate_limits_are_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply.rate_limited(), Reply.text("fine"))
    llm = provider(fake_openai)
    completion = await llm.complete([ChatMessage("user", "hi")])
    await llm.aclose()
    assert completion.text == "fine"
    assert len(fake_openai.requests) == 2


async def test_server_errors_become_llm_error_after_retries(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply.server_error("boom"), Reply.server_error("boom"))
    before = metric(
        "switchboard_llm_requests_total", provider="openai", model=MODEL, outcome="http_500"
    )
    llm = provider(fake_openai, max_retries=1)
    with pytest.raises(LLMError, match="HTTP 500") as caught:
        await llm.complete([ChatMessage("user", "hi")])
    await llm.aclose()
    assert caught.value.code.value == "llm_error"
    assert len(fake_openai.requests) == 2
    assert (
        metric("switchboard_llm_requests_total", provider="openai", model=MODEL, outcome="http_500")
        == before + 1
    )


async def test_a_slow_server_cannot_outlive_the_deadline(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply.text("too late").delayed(10))
    llm = provider(fake_openai, max_retries=0)
    started = time.monotonic()
    with pytest.raises(LLMError, match="did not answer"):
        await llm.complete([ChatMessage("user", "hi")], deadline=Deadline.after(0.5))
    await llm.aclose()
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "garbage",
    [
        Reply.text("I think you should use the calculator!"),
        Reply.tool_call("make_plan", '{"steps": [{"id": 1}]'),  # broken JSON
        Reply.raw("<html>not json</html>"),
        Reply.raw(
            '{"id": "x", "object": "chat.completion", "choices": null}',
            content_type="application/json",
        ),
    ],
)
async def test_garbage_falls_back_to_the_local_planner(
    fake_openai: FakeOpenAI, garbage: Reply
) -> None:
    fake_openai.enqueue(garbage)
    llm = provider(fake_openai, max_retries=0)
    message = "what is 17*23, and what time is it in Tokyo"  # two clauses: the model is asked
    plan, _ = await LLMPlanner(llm).plan(message, catalog(), max_steps=8)
    await llm.aclose()
    assert len(fake_openai.requests) == 1
    assert plan.source == "fallback"
    assert [s.agent for s in plan.steps] == ["calculator", "clock"]


async def test_an_invalid_plan_is_repaired_or_replaced(fake_openai: FakeOpenAI) -> None:
    unknown = {
        "steps": [
            {"id": "s1", "agent": "calculator", "instruction": "2+2"},
            {"id": "s2", "agent": "teleporter", "instruction": "go"},
        ]
    }
    cyclic = {
        "steps": [
            {"id": "a", "agent": "calculator", "instruction": "1", "depends_on": ["b"]},
            {"id": "b", "agent": "calculator", "instruction": "2", "depends_on": ["a"]},
        ]
    }
    fake_openai.enqueue(Reply.tool_call("make_plan", unknown), Reply.tool_call("make_plan", cyclic))
    repaired_before = metric("switchboard_plan_fallbacks_total", reason="repaired_unknown_agent")
    invalid_before = metric("switchboard_plan_fallbacks_total", reason="invalid")
    llm = provider(fake_openai)
    planner = LLMPlanner(llm)
    repaired, _ = await planner.plan("what is 2+2? teleport me home", catalog(), max_steps=8)
    replaced, _ = await planner.plan("what is 1+1? what is 2+2?", catalog(), max_steps=8)
    await llm.aclose()
    assert [s.agent for s in repaired.steps] == ["calculator"]
    assert repaired.source == "llm"
    assert replaced.source == "fallback"
    assert (
        metric("switchboard_plan_fallbacks_total", reason="repaired_unknown_agent")
        == repaired_before + 1
    )
    assert metric("switchboard_plan_fallbacks_total", reason="invalid") == invalid_before + 1


async def test_a_conversation_planned_by_the_llm_answered_by_its_tools(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.enqueue(
        Reply.tool_call(
            "make_plan",
            {
                "steps": [
                    {"id": "s1", "agent": "calculator", "instruction": "17*23"},
                    {"id": "s2", "agent": "upper", "instruction": "shout it", "depends_on": ["s1"]},
                ]
            },
        ),
        Reply.text("This is a classic example of how Google's translation engine misreads data."),
    )
    tokens_before = metric(
        "switchboard_llm_tokens_total", provider="openai", model=MODEL, kind="prompt"
    )
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values(), *TEST_AGENTS),
        orchestrator_running(settings, llm=llm),
    ):
        reply = await converse(requester, "what is 17*23? then shout it")
    await llm.aclose()
    assert [(s.agent, s.output) for s in reply.steps] == [
        ("calculator", "17 * 23 = 391"),
        ("upper", "17 * 23 = 391"),
    ]
    # Deterministic tools answered: their outputs are the answer, and the model that
    # would have rewritten them is never asked (one request: the plan).
    assert reply.answer == "17 * 23 = 391"
    assert len(fake_openai.requests) == 1
    assert reply.usage.total_tokens > 0  # the plan's
    assert (
        metric("switchboard_llm_tokens_total", provider="openai", model=MODEL, kind="prompt")
        > tokens_before
    )


async def test_the_llm_agent_answers_with_the_model(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.enqueue(Reply.text("Homer."))
    llm = provider(fake_openai)
    from switchboard.agents import call_agent

    async with agents_running(settings, builtin_agents()["llm"], llm=llm):
        result = await call_agent(requester, "llm", "who wrote the odyssey")
    await llm.aclose()
    assert (result.ok, result.output) == (True, "Homer.")
    assert result.usage is not None
    assert result.usage.total_tokens > 0


async def test_when_the_llm_fails_the_answer_is_composed(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.default = Reply.server_error("down")
    llm = provider(fake_openai, max_retries=0)
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(settings, llm=llm) as service,
    ):
        assert isinstance(service, OrchestratorService)
        reply = await converse(requester, "what is 17*23")
    await llm.aclose()
    assert "391" in reply.answer  # local plan, composed answer: still useful
    assert not reply.partial


def test_plans_are_plain_json_for_the_planned_event() -> None:
    import msgspec

    plan = msgspec.convert(PLAN, Plan)
    assert msgspec.to_builtins(plan)["steps"][2]["depends_on"] == ["s1", "s2"]
