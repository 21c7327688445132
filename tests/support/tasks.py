"""Checking that a stop left nothing running: the tasks of the loop, before and after."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.helpers import eventually


def running_tasks() -> set[asyncio.Task[Any]]:
    """The loop's unfinished tasks, but the current one."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


async def nothing_left_running(before: set[asyncio.Task[Any]]) -> None:
    """Fail unless every task started since ``before`` has finished.

    nats-py cancels its own tasks on close without waiting for them: they get a second.
    """
    try:
        await eventually(lambda: not running_tasks() - before, timeout=1.0)
    except AssertionError:
        raise AssertionError(f"still running: {running_tasks() - before}") from None
