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

:func:`stop_in_order` is the same promise for a stop made of several: cancelled
half-way, it still stops the rest (without grace), then re-raises.
:func:`uninterrupted` lets the few operations that must not be cut in the middle
finish before the caller's cancellation comes out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["stop_in_order", "stop_task"]


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


async def stop_in_order(grace: float, *steps: Callable[[float], Awaitable[object]]) -> None:
    """Run ``steps`` one after the other, each given the part of ``grace`` left (seconds).

    Use it where one stop is made of several (a process's components, a service's
    endpoints): it never stops half-way. If a step fails, or the caller is cancelled
    during one, the steps after it still run -- with no grace once the caller was
    cancelled, so it is not kept waiting and nothing is left running -- and the first
    failure is re-raised at the end.

    Raises:
        asyncio.CancelledError: the caller was cancelled while stopping (a step's own
            error, if one came first, is raised instead).
        Exception: the first error a step raised.
    """
    current = asyncio.current_task()
    before = current.cancelling() if current is not None else 0
    give_up = time.monotonic() + grace
    first: BaseException | None = None
    for step in steps:
        hurry = current is not None and current.cancelling() > before
        try:
            await step(0.0 if hurry else max(0.0, give_up - time.monotonic()))
        except (Exception, asyncio.CancelledError) as exc:
            first = first or exc
    if first is not None:
        raise first
    if current is not None and current.cancelling() > before:
        raise asyncio.CancelledError  # a step absorbed the caller's cancellation


async def uninterrupted(aw: Awaitable[T]) -> T:
    """Await ``aw`` to its end even if the caller is cancelled meanwhile, then re-raise that.

    For the few operations that must not be cut in the middle. nats-py's ``flush`` (and
    ``Subscription.drain``, which flushes) is one: cancelled, its PONG later finds the
    future cancelled, the read loop fails on it and the connection is reset, losing what
    else was in flight on it (nats-py 2.16). Keep such operations short: the caller waits.

    Raises:
        asyncio.CancelledError: the caller was cancelled meanwhile (``aw`` has finished;
            an error of its own is then dropped in favour of the cancellation).
    """
    task = asyncio.ensure_future(aw)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not task.cancelled():
            task.exception()  # retrieved, so it is not reported as never retrieved
        raise asyncio.CancelledError
    return task.result()
