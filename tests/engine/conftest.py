"""Fixtures for engine tests: settings for the test's server, and a running system."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from agents import builtin_agents
from orchestrator import EmbeddedNatsServer, OrchestratorService, Settings
from tests.support.agents import ALL as TEST_AGENTS
from tests.support.system import agents_running, make_settings, orchestrator_running


@pytest.fixture
def settings(nats_server: EmbeddedNatsServer) -> Settings:
    return make_settings(nats_server.url)


@pytest_asyncio.fixture
async def system(settings: Settings) -> AsyncIterator[OrchestratorService]:
    """Built-in and test agents plus an orchestrator, each on its own connection."""
    async with (
        agents_running(settings, *builtin_agents().values(), *TEST_AGENTS),
        orchestrator_running(settings) as service,
    ):
        yield service
