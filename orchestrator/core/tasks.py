"""Stopping a task without losing the caller's own cancellation.

The common idiom ::

    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

has a hole: if the *caller* is cancelled while it waits for ``task`` to wind
down, the ``CancelledError`` that arrives is the caller's, and the ``suppress``
swallows it. The caller then carries on as if nothing happened (nats-py's
flusher hangs, nats.py issues #469 and #853, came from this). :func:`stop_task`
tells the two apart with ``Task.cancelling()``: a cancellation requested of
the current task is re-raised; the stopped task's own is absorbed.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["stop_task"]


async def stop_task(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished.

    Returns once the task is done (its ``CancelledError`` absorbed). An
    exception the task raised (before or while winding down) propagates, as
    it would from ``await task``.

    Raises:
        asyncio.CancelledError: the caller itself was cancelled while waiting;
            the task has been asked to stop and is left to finish on its own.
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
