"""Every message on the wire has a reason: the messages a conversation costs, counted.

The orchestrator and a calculator agent run as processes on a nats-server
whose monitoring port gives the messages published (``/varz`` ``in_msgs``).
Each kind of one-step conversation is asked many times and the messages per
conversation are compared with the budget the README's "Message budget"
section gives, and why. A change that sends more fails here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NATS

from switchboard.orchestrator import new_correlation_id
from switchboard.orchestrator.core import ConversationClient, Requester
from switchboard.orchestrator.runtime import ChildProcess, EmbeddedNatsServer, free_port

pytestmark = pytest.mark.slow

#: Messages published per conversation of one calculator step, and why (README).
BUDGET = {
    # request, the agent's task, the agent's result, the reply: what a raw relay sends
    # (+2 with SWITCHBOARD_REPLICA_CLAIMS: the claim of its request id and the stored reply)
    "plain": 4,
    # + the progress the requester asked for: planned, step_started, step_finished, answered
    "streamed": 8,
    # + those four events on ai.events.<id> for watchers, asked for with "watch": true
    "watched": 8,
    # `nats req` with no Switchboard header at all: the same four as plain
    "nats-cli": 4,
    # + the turn written to the history bucket (JetStream's ack is the server's own): every
    # chat of the BFF is a turn, a new conversation named by its correlation id, which has
    # nothing to read first
    "first-turn": 5,
    # + the read of the conversation's history; the write reuses what was read
    "next-turn": 6,
}
ROUNDS = 40
QUESTION = "what is 17*23?"


@pytest_asyncio.fixture
async def monitored() -> AsyncIterator[EmbeddedNatsServer]:
    server = EmbeddedNatsServer(monitor_port=-1)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.cleanup)


async def _published(http: httpx.AsyncClient) -> int:
    return int((await http.get("/varz")).json()["in_msgs"])


async def test_each_kind_of_conversation_sends_what_the_budget_says(
    monitored: EmbeddedNatsServer,
) -> None:
    env = {"SWITCHBOARD_NATS_URL": monitored.url}
    metrics = free_port()
    nc: NATS = await nats.connect(monitored.url)
    async with (
        ChildProcess(
            "agent", ["agent", "calculator"], env={**env, "SWITCHBOARD_METRICS_PORT": "0"}
        ),
        ChildProcess(
            "orchestrator",
            ["orchestrator"],
            env={**env, "SWITCHBOARD_METRICS_PORT": str(metrics)},
            ready_url=f"http://127.0.0.1:{metrics}/readyz",
        ),
        Requester(nc) as requester,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{monitored.monitor_port}") as http,
    ):
        client = ConversationClient(requester, retries=0)
        for _ in range(100):  # until the orchestrator has discovered the agent
            if "391" in (await client.ask(QUESTION, user_id="u", timeout=10)).answer:
                break
            await asyncio.sleep(0.1)

        async def plain() -> None:
            assert "391" in (await client.ask(QUESTION, user_id="u", timeout=10)).answer

        async def streamed() -> None:
            async with client.stream(QUESTION, user_id="u", timeout=10) as events:
                items = [item async for item in events]
            assert "391" in items[-1].answer  # type: ignore[union-attr]

        async def watched() -> None:
            n = next(counter)
            body = {"correlation_id": f"conv-w-{n}", "user_id": "u", "message": QUESTION}
            msg = await nc.request(
                "ai.orchestrator.converse", json.dumps({**body, "watch": True}).encode(), 10
            )
            assert "391" in json.loads(msg.data)["answer"]

        async def nats_cli() -> None:
            n = next(counter)
            body = {"correlation_id": f"conv-n-{n}", "user_id": "u", "message": QUESTION}
            msg = await nc.request("ai.orchestrator.converse", json.dumps(body).encode(), 10)
            assert "391" in json.loads(msg.data)["answer"]

        async def first_turn() -> None:
            correlation_id = new_correlation_id("u")
            reply = await client.ask(
                QUESTION, user_id="u", correlation_id=correlation_id, conversation_id=correlation_id
            )
            assert "391" in reply.answer

        ongoing = new_correlation_id("u")

        async def next_turn() -> None:
            reply = await client.ask(QUESTION, user_id="u", conversation_id=ongoing)
            assert "391" in reply.answer

        counter = iter(range(10**6))
        kinds: dict[str, Callable[[], Awaitable[None]]] = {
            "plain": plain,
            "streamed": streamed,
            "watched": watched,
            "nats-cli": nats_cli,
            "first-turn": first_turn,
            "next-turn": next_turn,
        }
        spent = {}
        for kind, converse in kinds.items():
            await converse()  # warm
            await asyncio.sleep(0.2)
            before = await _published(http)
            for _ in range(ROUNDS):
                await converse()
            await asyncio.sleep(0.2)
            spent[kind] = (await _published(http) - before) / ROUNDS
    await nc.close()
    # Background traffic (an inbox probe, a discovery ping) may add a message to a run.
    assert {kind: round(per) for kind, per in spent.items()} == BUDGET, spent
