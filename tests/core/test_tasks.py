"""stop_task: the stopped task's cancellation is absorbed, the caller's own never is."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.orchestrator.core import stop_task


async def _slow_to_stop(stopping: asyncio.Event, release: asyncio.Event) -> None:
    try:
        await asyncio.sleep(3600)
    finally:
        stopping.set()
        await release.wait()  # winding down takes a while


async def test_stopping_a_task_absorbs_its_cancellation() -> None:
    task = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    await stop_task(task)
    assert task.cancelled()


async def test_stopping_nothing_or_a_finished_task_returns() -> None:
    await stop_task(None)
    done = asyncio.create_task(asyncio.sleep(0, result=1))
    await done
    await stop_task(done)


async def test_the_callers_own_cancellation_comes_out_while_it_waits_for_the_stop() -> None:
    stopping, release = asyncio.Event(), asyncio.Event()
    worker = asyncio.create_task(_slow_to_stop(stopping, release))
    await asyncio.sleep(0)
    caller = asyncio.create_task(stop_task(worker))
    await stopping.wait()  # the caller is now waiting for the worker to wind down
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert caller.cancelled()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await worker  # asked to stop, and it did


async def test_an_error_raised_while_winding_down_propagates() -> None:
    async def broken() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            raise RuntimeError("cleanup failed")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await stop_task(task)
