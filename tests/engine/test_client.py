"""The ConversationClient against a real orchestrator and agents (in-process, real NATS)."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client as NATS

from switchboard.orchestrator import (
    REPLY_MARGIN,
    ConversationClient,
    ConversationReply,
    Endpoint,
    OrchestratorService,
    OverloadedError,
    ProgressEvent,
    RemoteError,
    Request,
    Requester,
    encode,
)
from tests.helpers import eventually, metric


async def test_ask_answers(system: OrchestratorService, requester: Requester) -> None:
    reply = await ConversationClient(requester).ask("what is 17*23", user_id="tester")
    assert reply.answer == "17 * 23 = 391"
    assert reply.correlation_id.startswith("conv-tester-")
    assert not reply.partial


async def test_stream_yields_typed_events_then_the_reply(
    system: OrchestratorService, requester: Requester
) -> None:
    client = ConversationClient(requester, heartbeat=0.2, accept_timeout=2.0)
    items: list[ProgressEvent | ConversationReply] = []
    async with client.stream("what is 6*7", user_id="tester", correlation_id="conv-t-s1") as events:
        async for item in events:
            items.append(item)
    *progress, reply = items
    assert isinstance(reply, ConversationReply)
    assert "42" in reply.answer
    assert [e.kind for e in progress if not isinstance(e, ConversationReply)] == [
        "planned",
        "step_started",
        "step_finished",
        "answered",
    ]
    assert all(not isinstance(e, ConversationReply) for e in progress)
    assert {e.correlation_id for e in progress if not isinstance(e, ConversationReply)} == {
        "conv-t-s1"
    }


async def test_a_budget_that_runs_out_gives_a_partial_answer_not_a_timeout(
    system: OrchestratorService, requester: Requester
) -> None:
    started = asyncio.get_running_loop().time()
    reply = await ConversationClient(requester).ask("sleep 30", user_id="tester", timeout=1.0)
    assert asyncio.get_running_loop().time() - started < 1.0 + REPLY_MARGIN
    assert reply.partial
    assert reply.steps[0].error is not None
    assert reply.steps[0].error.code == "timeout"


async def test_leaving_the_stream_early_cancels_the_conversation(
    system: OrchestratorService, requester: Requester
) -> None:
    before = metric("switchboard_endpoint_cancelled_total", endpoint="sleepy")
    client = ConversationClient(requester)
    async with client.stream("sleep 30", user_id="tester") as events:
        async for item in events:
            if isinstance(item, ProgressEvent) and item.kind == "step_started":
                break
    assert len(requester.tracker) == 0
    # The orchestrator's handler is cancelled, and with it the agent's step.
    await eventually(
        lambda: metric("switchboard_endpoint_cancelled_total", endpoint="sleepy") == before + 1
    )


async def test_an_unknown_agent_is_an_error_reply(
    system: OrchestratorService, requester: Requester
) -> None:
    with pytest.raises(RemoteError, match="not running: teleporter") as caught:
        await ConversationClient(requester).ask("beam me up", user_id="t", agents=["teleporter"])
    assert caught.value.code.value == "bad_request"


async def test_the_catalog_and_the_history(
    system: OrchestratorService, requester: Requester
) -> None:
    client = ConversationClient(requester)
    names = [a.name for a in await client.agents(correlation_id="conv-t-cat")]
    assert names == sorted(names)
    assert {"calculator", "clock", "text"} <= set(names)
    await client.ask("what is 2+2", user_id="alice", conversation_id="trip")
    history = await client.history("alice", "trip", correlation_id="conv-alice-h")
    assert [t.message for t in history.turns] == ["what is 2+2"]
    assert (await client.history("bob", "trip", correlation_id="conv-bob-h")).turns == []


async def refusing_once(nc: NATS) -> tuple[Endpoint, list[str]]:
    """A stand-in orchestrator that answers overloaded to the first request, then answers."""
    seen: list[str] = []

    async def handler(request: Request) -> bytes:
        seen.append(request.correlation_id or "")
        if len(seen) == 1:
            raise OverloadedError("Busy, try again.")
        return encode(ConversationReply(correlation_id=request.correlation_id or "", answer="ok"))

    endpoint = Endpoint(
        nc, subject="ai.orchestrator.converse", queue="q", handler=handler, name="fake"
    )
    await endpoint.start()
    await nc.flush()
    return endpoint, seen


async def test_ask_sends_a_refused_request_again_once(
    nats_client: NATS, requester: Requester
) -> None:
    endpoint, seen = await refusing_once(nats_client)
    reply = await ConversationClient(requester).ask("hi", user_id="u", correlation_id="conv-u-1")
    assert reply.answer == "ok"
    assert seen == ["conv-u-1", "conv-u-1"]  # the same request identity both times
    await endpoint.stop()


async def test_without_retries_a_refusal_is_raised(nats_client: NATS, requester: Requester) -> None:
    endpoint, seen = await refusing_once(nats_client)
    client = ConversationClient(requester, retries=0)
    with pytest.raises(RemoteError) as caught:
        await client.ask("hi", user_id="u")
    assert caught.value.code.value == "overloaded"
    assert len(seen) == 1
    await endpoint.stop()


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan"), float("inf")])
async def test_a_budget_that_is_not_a_time_is_refused(requester: Requester, timeout: float) -> None:
    with pytest.raises(ValueError, match="budget"):
        await ConversationClient(requester).ask("hi", user_id="u", timeout=timeout)
    assert len(requester.tracker) == 0
