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
the current task *while it waits* is re-raised; the stopped task's own is
absorbed.

Two details make "while it waits" the right test, not "is cancelling at all":

* A caller cancelled earlier, stopping its tasks in a ``finally``, already has
  a cancellation in flight (it re-raises at the end of its ``finally``): a
  stop there must absorb the stopped task's ``CancelledError`` and let the
  rest of the cleanup run.
* Cancelling a task that awaits another task forwards the cancellation to the
  awaited one. If that one swallows it and returns, ``await task`` returns
  normally, and the caller's cancellation is visible only in the count.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["stop_task"]


async def stop_task(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished.

    Use it wherever a component stops a task it owns (a watchdog, a ticker, a
    sender). Returns once the task is done (its ``CancelledError`` absorbed).
    An exception the task raised (before or while winding down) propagates,
    as it would from ``await task``. When the call returns or raises, ``task``
    is done: a caller cancelled mid-stop leaves nothing running behind it.

    Raises:
        asyncio.CancelledError: the caller itself was cancelled while waiting;
            the cancellation reached ``task`` too (it was being stopped anyway).
    """
    if task is None:
        return
    current = asyncio.current_task()
    before = current.cancelling() if current is not None else 0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if current is not None and current.cancelling() > before:
            raise
        return
    if current is not None and current.cancelling() > before:
        raise asyncio.CancelledError
