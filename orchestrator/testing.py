"""Test your own agents against a real nats-server in a few lines.

Enable the fixtures in your ``conftest.py``::

    pytest_plugins = ["switchboard.orchestrator.testing"]

    async def test_my_agent(nats_client):
        ...  # a connected nats-py client on a fresh server with JetStream

``nats_server`` is a fresh :class:`EmbeddedNatsServer` per test (a few tens of
ms to start); ``nats_client`` a connection to it; ``requester`` a started
:class:`Requester` on that connection. Outside pytest, ``running_nats()``
gives the same server as an async context manager.

Requires pytest and pytest-asyncio: ``pip install 'switchboard-nats[testing]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import nats
import pytest_asyncio
from nats.aio.client import Client as NATS

from .core.requester import Requester
from .runtime.embedded import EmbeddedNatsServer

__all__ = ["nats_client", "nats_server", "requester", "running_nats"]


@contextlib.asynccontextmanager
async def running_nats(**options: object) -> AsyncIterator[EmbeddedNatsServer]:
    """A started nats-server for the duration of the block (options: EmbeddedNatsServer's)."""
    server = EmbeddedNatsServer(**options)  # type: ignore[arg-type]
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.cleanup)


@pytest_asyncio.fixture
async def nats_server() -> AsyncIterator[EmbeddedNatsServer]:
    """A fresh nats-server (JetStream on) on a free loopback port."""
    async with running_nats() as server:
        yield server


@pytest_asyncio.fixture
async def nats_client(nats_server: EmbeddedNatsServer) -> AsyncIterator[NATS]:
    """A nats-py client connected to ``nats_server``; closed after the test."""
    nc = await nats.connect(
        nats_server.url,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )
    try:
        yield nc
    finally:
        await nc.close()


@pytest_asyncio.fixture
async def requester(nats_client: NATS) -> AsyncIterator[Requester]:
    """A started :class:`Requester` on ``nats_client``; closed after the test."""
    async with Requester(nats_client, probe_interval=0.5) as started:
        yield started
