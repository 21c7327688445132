"""Talking to agents directly: ``serving`` runs agents for a block, ``call_agent`` asks one.

These make testing your own agent against a real nats-server a few lines::

    async def test_weather(nats_client, requester):     # fixtures: orchestrator.testing
        async with serving(nats_client, weather):
            result = await call_agent(requester, "weather", "Paris")
        assert result.output == "Sunny in Paris"
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from nats.aio.client import Client as NATS

from switchboard.orchestrator.core import AgentResult, AgentTask, Deadline, Requester
from switchboard.orchestrator.llm.base import LLM

from .sdk import Agent
from .worker import AgentWorker

__all__ = ["call_agent", "serving"]


@contextlib.asynccontextmanager
async def serving(
    nc: NATS, *agents: Agent, llm: LLM | None = None, **options: Any
) -> AsyncIterator[list[AgentWorker]]:
    """Run ``agents`` on ``nc`` for the duration of the block."""
    workers = [AgentWorker(nc, agent, llm=llm, **options) for agent in agents]
    for worker in workers:
        await worker.start()
    await nc.flush()
    try:
        yield workers
    finally:
        for worker in workers:
            await worker.stop(grace=1.0)


async def call_agent(
    requester: Requester,
    name: str,
    instruction: str,
    *,
    inputs: Mapping[str, Any] | None = None,
    timeout: float = 10.0,
    correlation_id: str | None = None,
) -> AgentResult:
    """Send one task to agent ``name`` and return its result.

    Raises:
        RemoteError: the agent failed (``.code`` is agent_error, timeout ...).
        NoRespondersError: no such agent is running.
    """
    correlation_id = correlation_id or f"conv-test-{uuid.uuid4()}"
    deadline = Deadline.after(timeout)
    task = AgentTask(
        correlation_id=correlation_id,
        task_id="s1",
        agent=name,
        instruction=instruction,
        inputs=dict(inputs or {}),
    )
    return await requester.call(
        requester.subjects.agent(name),
        task,
        AgentResult,
        correlation_id=correlation_id,
        deadline=deadline,
    )
