"""Small helpers for tests: reading metrics, waiting for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import REGISTRY


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
