"""Tokens end to end: model server -> llm agent -> NATS -> orchestrator -> client / SSE.

Every part is real: nats-server, the orchestrator and the agents on their own
connections, the BFF serving HTTP, the ``openai`` client streaming from the model
server of the ``model_server`` fixture (the fake by default; any OpenAI-compatible
server with ``SWITCHBOARD_TEST_MODEL_URL``, see ``tests/support/model_server.py``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from switchboard.agents import TaskContext, agent, builtin_agents
from switchboard.orchestrator import (
    TOKEN_MAX_BYTES,
    TOKEN_MAX_DELAY,
    AgentTask,
    ConversationClient,
    ConversationReply,
    EmbeddedNatsServer,
    LLMError,
    OpenAIProvider,
    ProgressEvent,
    Requester,
    Settings,
    TokenEvent,
    encode_event,
)
from switchboard.orchestrator.engine import CITED
from tests.helpers import eventually, metric
from tests.support.fake_openai import Reply
from tests.support.model_server import LONG_ANSWER, ModelServer
from tests.support.system import (
    agents_running,
    bff_running,
    make_settings,
    orchestrator_running,
)

QUESTION = "explain what a message broker does"


def assert_coalesced(tokens: list[TokenEvent], seconds: float) -> None:
    """No more messages than the rule allows for an answer that took ``seconds``."""
    size = sum(len(t.detail.text.encode()) for t in tokens)
    assert len(tokens) <= 2 + seconds / TOKEN_MAX_DELAY + size / TOKEN_MAX_BYTES


async def test_tokens_reach_a_nats_client_in_order_coalesced(
    model_server: ModelServer, settings: Settings, requester: Requester
) -> None:
    llm = model_server.provider()
    events: list[ProgressEvent] = []
    reply: ConversationReply | None = None
    async with (
        agents_running(settings, builtin_agents()["llm"], llm=llm),
        orchestrator_running(settings),  # offline: the local planner, a composed answer
    ):
        client = ConversationClient(requester)
        started = time.monotonic()
        async with client.stream(QUESTION, user_id="tester", timeout=60) as stream:
            async for item in stream:
                if isinstance(item, ConversationReply):
                    reply = item
                else:
                    events.append(item)
        seconds = time.monotonic() - started
    await llm.aclose()

    assert reply is not None and not reply.partial
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert tokens, [e.kind for e in events]
    assert {(t.step, t.agent) for t in tokens} == {(reply.steps[0].id, "llm")}
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) == list(range(1, len(events) + 1))  # in order, none lost
    kinds = [e.kind for e in events]
    assert kinds.index("step_started") < kinds.index("token")
    assert max(i for i, k in enumerate(kinds) if k == "token") < kinds.index("step_finished")
    streamed = "".join(t.detail.text for t in tokens)
    assert streamed.strip() == reply.answer == reply.steps[0].output
    assert_coalesced(tokens, seconds)
    usage = reply.steps[0].usage
    assert usage is not None
    if model_server.fake is not None:  # the fake's exact text and word-count usage
        assert streamed == LONG_ANSWER
        assert len(tokens) < len(LONG_ANSWER.split())  # fewer messages than model chunks
        assert usage.completion_tokens == len(LONG_ANSWER.split())
        assert reply.usage.completion_tokens == usage.completion_tokens


class AnswerOnly:
    """The model server's provider for answers, with planning refused at once (the local
    planner then plans): what is under test is the aggregator's streamed answer, and a
    small local model's plan can take the whole budget (issue 16, item 3)."""

    def __init__(self, llm: OpenAIProvider) -> None:
        self._llm = llm
        self.provider, self.model, self.offline = llm.provider, llm.model, False
        self.complete, self.stream, self.aclose = llm.complete, llm.stream, llm.aclose

    async def structured(self, *args: Any, **kwargs: Any) -> Any:
        raise LLMError("Planning is not under test here.")


async def test_the_aggregators_answer_streams_too(
    model_server: ModelServer, settings: Settings, requester: Requester
) -> None:
    llm = AnswerOnly(model_server.provider())
    events: list[ProgressEvent] = []
    reply: ConversationReply | None = None
    async with (
        agents_running(settings, *builtin_agents().values(), llm=llm._llm),
        orchestrator_running(settings, llm=llm),  # type: ignore[arg-type]
    ):
        client = ConversationClient(requester)
        async with client.stream(
            "what is 17*23, and explain what a message broker does", user_id="tester", timeout=90
        ) as stream:
            async for item in stream:
                if isinstance(item, ConversationReply):
                    reply = item
                else:
                    events.append(item)
    await llm.aclose()

    assert reply is not None
    assert [s.agent for s in reply.steps] == ["calculator", "llm"]  # the local plan
    # The llm step's tokens name their step; the answer's have none.
    tokens = [e for e in events if isinstance(e, TokenEvent) and e.step is None]
    assert tokens and all(t.agent is None for t in tokens)
    kinds = [e.kind if e.step or e.kind != "token" else "answer_token" for e in events]
    finished = max(i for i, k in enumerate(kinds) if k == "step_finished")
    assert finished < kinds.index("answer_token")  # written from the results
    assert max(i for i, k in enumerate(kinds) if k == "answer_token") < kinds.index("answered")
    # The answer is the text streamed, then the agents' own outputs cited under it.
    streamed = "".join(t.detail.text for t in tokens).strip()
    assert reply.answer.startswith(f"{streamed}\n\n{CITED}\n- s1 (calculator): 17 * 23 = 391")
    if model_server.fake is not None:
        assert streamed == LONG_ANSWER
        assert [r.get("stream") for r in model_server.fake.requests] == [True, True]


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event, data) of an SSE response, as they come."""
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            yield event, json.loads(line.removeprefix("data:"))


@pytest.fixture
def http_settings(nats_server: EmbeddedNatsServer) -> Settings:
    return make_settings(nats_server.url, http_port=0)


async def test_tokens_reach_an_sse_client_as_their_own_events(
    model_server: ModelServer, http_settings: Settings
) -> None:
    llm = model_server.provider()
    seen: list[tuple[str, Any]] = []
    async with (
        agents_running(http_settings, builtin_agents()["llm"], llm=llm),
        orchestrator_running(http_settings),
        bff_running(http_settings) as http,
        http.stream("POST", "/v1/chat/stream", json={"message": QUESTION}) as response,
    ):
        assert response.status_code == 200
        async for event, data in sse_events(response):
            seen.append((event, data))
    await llm.aclose()

    kinds = [event for event, _ in seen]
    assert kinds[-1] == "reply"
    tokens = [data for event, data in seen if event == "token"]
    assert tokens
    assert all(t["kind"] == "token" and t["agent"] == "llm" for t in tokens)
    assert [t["seq"] for t in tokens] == sorted(t["seq"] for t in tokens)
    reply = seen[-1][1]
    assert "".join(t["detail"]["text"] for t in tokens).strip() == reply["answer"]
    assert kinds.index("token") < kinds.index("step_finished") < kinds.index("answered")


async def test_a_client_leaving_mid_answer_stops_the_model_server(
    model_server: ModelServer, http_settings: Settings
) -> None:
    if model_server.fake is not None:  # long enough that only a disconnect can end it early
        model_server.fake.default = Reply.text(" ".join(["token"] * 3000)).streamed(0.01)
    llm = model_server.provider()
    cancelled = metric("switchboard_endpoint_cancelled_total", endpoint="llm")
    async with (
        agents_running(http_settings, builtin_agents()["llm"], llm=llm),
        orchestrator_running(http_settings),
        bff_running(http_settings) as http,
    ):
        async with http.stream("POST", "/v1/chat/stream", json={"message": QUESTION}) as response:
            async for event, _ in sse_events(response):
                if event == "token":
                    break  # the answer is being written: hang up
        # The BFF cancels the conversation, the core tells the agent, its handler is
        # cancelled, and leaving the token stream closes the HTTP stream to the model.
        await eventually(
            lambda: metric("switchboard_endpoint_cancelled_total", endpoint="llm") == cancelled + 1
        )
        if model_server.fake is not None:
            record = model_server.fake.streams[-1]
            async with asyncio.timeout(10):
                await record.done.wait()
            assert record.disconnected and not record.completed
            assert record.pieces < record.total  # it stopped generating mid-answer
    await llm.aclose()


async def test_tokens_of_a_nested_call_reach_the_user_tagged_with_its_path(
    model_server: ModelServer, settings: Settings, requester: Requester
) -> None:
    # What ``ctx.call`` sets for an agent another agent called: its tokens carry the path,
    # and the orchestrator passes it on untouched.
    @agent(
        "nested",
        "Writes with the model as a nested call. Example: 'nested write'",
        keywords=("nested",),
    )
    async def nested(task: AgentTask, ctx: TaskContext) -> str:
        ctx.call_path = "s1/llm>nested"
        return await ctx.ask_llm(task.instruction, stream=True)

    llm = model_server.provider()
    tokens: list[TokenEvent] = []
    async with agents_running(settings, nested, llm=llm), orchestrator_running(settings):
        client = ConversationClient(requester)
        async with client.stream(
            "nested write a poem", user_id="tester", agents=["nested"], timeout=60
        ) as stream:
            async for item in stream:
                if isinstance(item, TokenEvent):
                    tokens.append(item)
    await llm.aclose()
    assert tokens
    assert {(t.agent, t.detail.path) for t in tokens} == {("nested", "s1/llm>nested")}
    wire = json.loads(encode_event(tokens[0]))
    assert wire["detail"]["path"] == "s1/llm>nested"
    assert list(wire) == ["correlation_id", "kind", "step", "agent", "detail", "ts", "seq"]
