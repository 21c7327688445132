"""Running Switchboard parts inside a test: the orchestrator and agents on their own connections."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from switchboard.agents import BUILTIN_PATTERNS, Agent, AgentWorker, builtin_agents
from switchboard.orchestrator import (
    LLM,
    AgentInfo,
    ConversationReply,
    ConversationRequest,
    EmbeddedNatsServer,
    LocalLLM,
    OrchestratorService,
    Requester,
    Runtime,
    Settings,
    new_correlation_id,
)
from switchboard.orchestrator.core import Deadline


def builtin_catalog() -> dict[str, AgentInfo]:
    """The built-in agents as the planner sees them in the catalog."""
    return {
        name: AgentInfo(
            name=name,
            description=a.description,
            subject=f"ai.agents.{name}",
            keywords=a.keywords,
            patterns=a.patterns,
        )
        for name, a in builtin_agents().items()
    }


def make_settings(nats_url: str, **overrides: Any) -> Settings:
    """Settings tuned for tests: quick refresh, short heartbeats, no fixed ports."""
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "metrics_port": 0,
        "catalog_refresh": 0.3,
        "heartbeat_interval": 0.2,
        "accept_timeout": 2.0,
        "step_timeout": 10.0,
        "conversation_timeout": 20.0,
        "shutdown_grace": 2.0,
        "log_level": "warning",
        # As deployed with replicas (the Kubernetes manifests): retries claimed across them.
        "replica_claims": True,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def orchestrator_running(
    settings: Settings, llm: LLM | None = None
) -> AsyncIterator[OrchestratorService]:
    runtime = Runtime(
        settings, part="orchestrator", name="test", health=False, configure_logs=False
    )
    await runtime.connect()
    service = OrchestratorService(
        runtime.nc,
        runtime.requester,
        llm or LocalLLM(),
        settings,
        trusted_patterns=BUILTIN_PATTERNS,
    )
    runtime.add(service)
    await runtime.start()
    try:
        yield service
    finally:
        await runtime.shutdown()


@contextlib.asynccontextmanager
async def agents_running(
    settings: Settings, *agents: Agent, llm: LLM | None = None
) -> AsyncIterator[list[AgentWorker]]:
    runtime = Runtime(settings, part="agent", name="test", health=False, configure_logs=False)
    await runtime.connect()
    requester = runtime.requester if any(a.calls for a in agents) else None
    workers = [
        AgentWorker(
            runtime.nc,
            a,
            subjects=runtime.subjects,
            llm=llm or LocalLLM(),
            requester=requester,
            max_call_depth=settings.max_call_depth,
            max_calls=settings.max_calls,
            call_heartbeat=settings.heartbeat_interval,
            call_accept_timeout=settings.accept_timeout,
        )
        for a in agents
    ]
    for worker in workers:
        runtime.add(worker)
    await runtime.start()
    try:
        yield workers
    finally:
        await runtime.shutdown()


@contextlib.asynccontextmanager
async def bff_running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The BFF in this process; yields an HTTP client for it."""
    from switchboard.bff import build_bff

    runtime = Runtime(settings, part="bff", name="test", health=False, configure_logs=False)
    await runtime.connect()
    try:
        server = await build_bff(runtime)
        await runtime.start()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield http
    finally:
        await runtime.shutdown()


async def converse(
    requester: Requester,
    message: str,
    *,
    user: str = "tester",
    timeout: float = 20.0,
    **fields: Any,
) -> ConversationReply:
    """One conversation through ``ai.orchestrator.converse``."""
    correlation_id = new_correlation_id(user)
    request = ConversationRequest(
        correlation_id=correlation_id, user_id=user, message=message, **fields
    )
    return await requester.call(
        requester.subjects.converse,
        request,
        ConversationReply,
        correlation_id=correlation_id,
        deadline=Deadline.after(timeout),
    )


@pytest.fixture
def settings(nats_server: EmbeddedNatsServer) -> Settings:
    """Test settings pointing at this test's nats-server."""
    return make_settings(nats_server.url)


@pytest_asyncio.fixture
async def system(settings: Settings) -> AsyncIterator[OrchestratorService]:
    """Built-in and test agents plus an orchestrator, each on its own connection."""
    from tests.support.agents import ALL as TEST_AGENTS

    async with (
        agents_running(settings, *builtin_agents().values(), *TEST_AGENTS),
        orchestrator_running(settings) as service,
    ):
        yield service
