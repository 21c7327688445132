"""Small helpers for tests: reading metrics, waiting for a condition, an endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from nats.aio.client import Client as NATS
from prometheus_client import REGISTRY

from switchboard.orchestrator.core.endpoint import Endpoint, Handler


def metric(name: str, **labels: str) -> float:
    """Current value of a sample in the default registry (0 when absent)."""
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def eventually(
    check: Callable[[], bool], *, timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Wait until ``check()`` is true; fail the test after ``timeout`` seconds."""
    give_up = time.monotonic() + timeout
    while not check():
        if time.monotonic() > give_up:
            raise AssertionError(f"condition not met within {timeout}s: {check}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def served(nc: NATS, handler: Handler, **options: Any) -> AsyncIterator[Endpoint]:
    """An :class:`Endpoint` (``options``: its own) serving on ``nc`` for the block.

    It is stopped on the way out however the block ends, a failed assert
    included, so no subscription or handler task outlives the test.
    """
    endpoint = Endpoint(nc, handler=handler, **options)
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()
