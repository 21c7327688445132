"""Recovery edges: what a user expects when NATS or an orchestrator comes back, or does not.

1. A chat sent while NATS is down waits in the client's reconnect buffer. When
   NATS returns, it goes out at once -- before the orchestrator has
   reconnected and subscribed again -- and got no_responders; the one retry
   0.1 s later came too early as well. The user expects an answer once the
   system is back, within the chat's budget.
2. An orchestrator killed mid-conversation: the caller notices in seconds
   (its heartbeats stop) and expects the surviving replica to answer, and the
   dead replica's agent work to stop instead of running on for nobody.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

import pytest

from switchboard.bff.schemas import ChatRequest
from switchboard.orchestrator import EmbeddedNatsServer

if TYPE_CHECKING:
    from .conftest import Deploy

pytestmark = pytest.mark.slow


async def test_a_chat_buffered_during_a_nats_outage_is_answered_once_nats_is_back(
    nats_server: EmbeddedNatsServer, deploy: Deploy
) -> None:
    system = await deploy(nats_server.url, wait_for=["whoami"])
    await asyncio.to_thread(nats_server.kill)
    await asyncio.sleep(0.5)
    chat = asyncio.create_task(
        system.bff.gateway.chat(
            "u1",
            ChatRequest(message="whoami outage-1", agents=["whoami"], timeout_s=20),
            correlation_id="conv-u1-outage-1",
        )
    )
    await asyncio.sleep(3.0)  # a long outage: the parts' reconnect backoff has grown
    assert not chat.done()
    await asyncio.to_thread(nats_server.start)
    reply = await asyncio.wait_for(chat, 30)
    assert reply.error is None, reply.error
    assert "outage-1" in reply.answer


async def test_a_conversation_on_a_killed_orchestrator_is_answered_by_the_survivor(
    nats_server: EmbeddedNatsServer, deploy: Deploy
) -> None:
    system = await deploy(
        nats_server.url,
        wait_for=["sleepy"],
        orchestrators=("orchestrator-a", "orchestrator-b"),
    )
    chats = [
        asyncio.create_task(
            system.bff.gateway.chat(
                f"u{n}",
                ChatRequest(message="sleep 3", agents=["sleepy"], timeout_s=20),
                correlation_id=f"conv-u{n}-kill-{n}",
            )
        )
        for n in range(8)  # spread over both replicas by the queue group
    ]
    await asyncio.sleep(1.0)  # every conversation is in the sleepy agent now
    victim = system.orchestrators[0]
    victim.send_signal(signal.SIGKILL)
    replies = await asyncio.wait_for(asyncio.gather(*chats), 40)
    assert [r.error for r in replies] == [None] * len(chats)
    assert all("slept 3" in r.answer for r in replies)
    sleepy = system.agents["agents"]
    await sleepy.wait_total(
        "switchboard_endpoint_cancelled_total", endpoint="sleepy", at_least=1, timeout=10
    )
