"""Never an answer worse than the agents' own results (issue 16's failures, replayed).

The real openai client against the scripted server plays a small model that is
fast, valid and sometimes nonsense: the answers must stay the agents' outputs.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from switchboard.agents import builtin_agents
from switchboard.orchestrator import (
    ChatMessage,
    OpenAIProvider,
    Requester,
    Settings,
)
from switchboard.orchestrator.engine import CITED, LLMPlanner
from tests.helpers import metric
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.system import agents_running, converse, orchestrator_running
from tests.support.system import builtin_catalog as catalog

MODEL = "smol"
REWRITE = "This is a classic example of how Google's translation engine can misinterpret data."


def provider(fake: FakeOpenAI, **options: object) -> OpenAIProvider:
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 10.0)
    return OpenAIProvider(model=MODEL, api_key="test-key", base_url=fake.base_url, **options)  # type: ignore[arg-type]


def plan_of(*steps: dict[str, object]) -> Reply:
    return Reply.tool_call("make_plan", {"steps": list(steps)})


# -- the agents' outputs are the answer ------------------------------------------------------


async def test_tool_outputs_are_the_answer_and_no_model_rewrites_them(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.enqueue(
        plan_of(
            {"id": "s1", "agent": "calculator", "instruction": "17 * 23"},
            {"id": "s2", "agent": "clock", "instruction": "what time is it in Tokyo"},
        )
    )
    fake_openai.default = Reply.text(REWRITE)  # what the small model would answer
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(settings, llm=llm),
    ):
        reply = await converse(requester, "what is 17*23, and what time is it in Tokyo?")
    await llm.aclose()
    assert "17 * 23 = 391" in reply.answer
    assert "Tokyo" in reply.answer
    assert "Google" not in reply.answer
    assert len(fake_openai.requests) == 1  # the plan; no aggregation call


async def test_one_llm_step_is_the_answer_not_rewritten(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    haiku = "Grey waves fold and break\nsalt wind carries gull voices\nthe tide keeps its time"
    fake_openai.enqueue(
        plan_of({"id": "s1", "agent": "llm", "instruction": "write a haiku about the sea"}),
        Reply.text(haiku),  # the llm agent
    )
    fake_openai.default = Reply.text("Hikirimamura / Ariana Ramirez")
    llm = provider(fake_openai)
    async with (
        agents_running(settings, builtin_agents()["llm"], llm=llm),
        orchestrator_running(settings, llm=llm),
    ):
        reply = await converse(requester, "write a haiku about the sea")
    await llm.aclose()
    assert reply.answer == haiku
    assert len(fake_openai.requests) == 2  # the plan and the haiku: no second rewrite


async def test_a_stitched_answer_cites_the_outputs_beside_it(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.enqueue(
        plan_of(
            {"id": "s1", "agent": "calculator", "instruction": "17 * 23"},
            {"id": "s2", "agent": "llm", "instruction": "name a famous number"},
        ),
        Reply.text("42 is famous."),  # the llm agent
        Reply.text("17 times 23 is 400, and 42 is famous."),  # a hallucinated stitch
    )
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values(), llm=llm),
        orchestrator_running(settings, llm=llm),
    ):
        reply = await converse(requester, "what is 17*23? and name a famous number")
    await llm.aclose()
    assert len(fake_openai.requests) == 3
    stitched, cited = reply.answer.split(CITED)
    assert stitched.strip() == "17 times 23 is 400, and 42 is famous."
    assert "s1 (calculator): 17 * 23 = 391" in cited  # the truth stays in sight
    assert "s2 (llm): 42 is famous." in cited


async def test_html_entities_from_the_chat_template_are_decoded(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(
        Reply.text("He said &#34;hello&#34; &amp; left"),
        Reply.text("Write &amp;quot; as &quot;"),
    )
    llm = provider(fake_openai)
    said = await llm.complete([ChatMessage("user", 'what did he say? "quote" it')])
    # A question about entities keeps them as the model wrote them.
    meant = await llm.complete([ChatMessage("user", "how do I write &quot; in HTML?")])
    await llm.aclose()
    assert said.text == 'He said "hello" & left'
    assert meant.text == "Write &amp;quot; as &quot;"


# -- no call a conversation does not need; bounded planning ---------------------------------


async def test_a_trivial_request_asks_no_model(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.default = Reply.text("too late").delayed(30)  # a model that would stall
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(settings, llm=llm),
    ):
        reply = await converse(requester, "uppercase hello world")
    await llm.aclose()
    assert reply.answer == "HELLO WORLD"
    assert fake_openai.requests == []


async def test_planning_gets_its_own_budget(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.default = Reply.text("too late").delayed(30)
    quick = msgspec.structs.replace(settings, llm_plan_timeout=1.5)
    llm = provider(fake_openai, timeout=30.0)
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(quick, llm=llm),
    ):
        reply = await converse(requester, "what is 17*23, and what time is it in Tokyo?")
    await llm.aclose()
    assert "17 * 23 = 391" in reply.answer  # the local planner planned in time
    assert len(fake_openai.requests) == 1
    # The client was told the plan's budget, not the provider's 30 s nor 30% of the deadline.
    assert float(fake_openai.request_headers[0]["x-stainless-read-timeout"]) <= 1.5


# -- plans that validate but make no sense --------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        # the wrong agent for its instruction
        ([{"id": "s1", "agent": "clock", "instruction": "17 * 23"}], "wrong_agent"),
        # one catch-all step where the rules are sure of two tools
        (
            [{"id": "s1", "agent": "llm", "instruction": "17*23 and the time in Tokyo"}],
            "missed_agent",
        ),
        # nothing but garbage instructions
        ([{"id": "s1", "agent": "llm", "instruction": " ?! "}], "empty_instruction"),
    ],
)
async def test_a_nonsense_plan_falls_back_to_the_rules(
    fake_openai: FakeOpenAI, steps: list[dict[str, object]], reason: str
) -> None:
    fake_openai.enqueue(plan_of(*steps))
    before = metric("switchboard_plan_fallbacks_total", reason=reason)
    llm = provider(fake_openai)
    plan, _ = await LLMPlanner(llm).plan(
        "what is 17*23, and what time is it in Tokyo?", catalog(), max_steps=8
    )
    await llm.aclose()
    assert plan.source == "fallback"
    assert [s.agent for s in plan.steps] == ["calculator", "clock"]
    assert metric("switchboard_plan_fallbacks_total", reason=reason) == before + 1


async def test_repeated_and_empty_steps_are_repaired(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(
        plan_of(
            {"id": "a", "agent": "calculator", "instruction": "17 * 23"},
            {"id": "b", "agent": "calculator", "instruction": "17  *  23"},
            {"id": "c", "agent": "llm", "instruction": "..."},
            {"id": "d", "agent": "clock", "instruction": "what time is it in Tokyo"},
            {
                "id": "e",
                "agent": "summarizer",
                "instruction": "summarize the results",
                "depends_on": ["a", "b", "c", "d"],
            },
        )
    )
    llm = provider(fake_openai)
    plan, _ = await LLMPlanner(llm).plan(
        "what is 17*23, and what time is it in Tokyo? summarize", catalog(), max_steps=8
    )
    await llm.aclose()
    assert plan.source == "llm"
    assert [(s.id, s.agent, s.depends_on) for s in plan.steps] == [
        ("a", "calculator", []),
        ("d", "clock", []),
        ("e", "summarizer", ["a", "d"]),
    ]


async def test_a_nonsense_plan_gives_the_offline_answer(
    fake_openai: FakeOpenAI, settings: Settings, requester: Requester
) -> None:
    fake_openai.enqueue(
        plan_of(
            {"id": "s1", "agent": "clock", "instruction": "17*23"},
            {"id": "s2", "agent": "clock", "instruction": "17*23"},
        )
    )
    fake_openai.default = Reply.text(REWRITE)
    llm = provider(fake_openai)
    async with (
        agents_running(settings, *builtin_agents().values()),
        orchestrator_running(settings, llm=llm),
    ):
        reply = await converse(requester, "what is 17*23, and what time is it in Tokyo?")
        offline = await converse(requester, "what is 17*23, and what time is it in Tokyo?")
    await llm.aclose()
    assert "17 * 23 = 391" in reply.answer
    assert not reply.partial
    assert [s.agent for s in reply.steps] == [s.agent for s in offline.steps]


async def test_an_instruction_unrelated_to_the_message_is_not_run(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.enqueue(plan_of({"id": "s1", "agent": "llm", "instruction": "jhkf"}))
    llm = provider(fake_openai)
    plan, _ = await LLMPlanner(llm).plan("write a haiku about the sea", catalog(), max_steps=8)
    await llm.aclose()
    assert plan.source == "fallback"
    assert [(s.agent, s.instruction) for s in plan.steps] == [
        ("llm", "write a haiku about the sea")
    ]


# -- the plan request gets the server's constrained decoding ---------------------------------


async def test_the_plan_request_constrains_what_the_model_can_say(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.enqueue(plan_of({"id": "s1", "agent": "llm", "instruction": "a haiku"}))
    llm = provider(fake_openai)
    await LLMPlanner(llm).plan("write a haiku, and what is 2+2?", catalog(), max_steps=3)
    await llm.aclose()
    sent = fake_openai.requests[0]
    # One function, forced: llama.cpp turns its parameters into a grammar, vLLM into guided
    # decoding, OpenAI follows it; the fallback to the message's content covers the rest.
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "make_plan"}}
    schema = sent["tools"][0]["function"]["parameters"]
    assert "$defs" not in json.dumps(schema)  # inline: grammar converters skip $refs
    steps = schema["properties"]["steps"]
    assert (steps["minItems"], steps["maxItems"]) == (1, 3)
    step = steps["items"]["properties"]
    assert step["agent"]["enum"] == sorted(catalog())  # no unknown agent can be written
    assert step["instruction"]["minLength"] == 1
    assert step["id"]["pattern"] == "^s[0-9]{1,3}$"
    # Likeliest tokens, and a bound: a model looping in its grammar stops in seconds.
    assert sent["temperature"] == 0
    assert 0 < sent["max_tokens"] <= 1024
