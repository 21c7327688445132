"""Fixtures of the core's tests: endpoints that are always stopped."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

import pytest_asyncio
from nats.aio.client import Client as NATS

from switchboard.orchestrator.core.endpoint import Endpoint, Handler
from tests.helpers import served


class Serve(Protocol):
    """Start an endpoint for this test: ``await serve(handler, **endpoint_options)``."""

    def __call__(
        self, handler: Handler, *, nc: NATS | None = None, **options: Any
    ) -> Awaitable[Endpoint]: ...


@pytest_asyncio.fixture
async def serve(nats_client: NATS) -> AsyncIterator[Serve]:
    """Serves endpoints on ``nats_client`` (or ``nc=``) and stops each after the test.

    Defaults: subject ``svc.test``, queue group ``q-test``, name ``test``. The
    stop runs whether the test passed or an assert failed; a test may still
    stop an endpoint itself (stopping is idempotent) when stopping is what it
    tests.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def start(handler: Handler, *, nc: NATS | None = None, **options: Any) -> Endpoint:
            options.setdefault("subject", "svc.test")
            options.setdefault("queue", "q-test")
            options.setdefault("name", "test")
            return await stack.enter_async_context(served(nc or nats_client, handler, **options))

        yield start
