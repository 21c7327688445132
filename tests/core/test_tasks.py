"""stop_task: the stopped task's cancellation is absorbed, the caller's own never is;
stop_in_order never stops half-way; uninterrupted finishes before the cancellation."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.orchestrator.core import stop_in_order, stop_task
from switchboard.orchestrator.core.tasks import uninterrupted


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


async def test_a_stop_in_the_cleanup_of_a_cancelled_caller_lets_the_cleanup_finish() -> None:
    # The caller's cancellation is already on its way out (re-raised after the finally);
    # the stop must not mistake it for a new one and cut the rest of the cleanup short.
    cleaned: list[str] = []

    async def caller() -> None:
        worker = asyncio.create_task(asyncio.sleep(3600))
        try:
            await asyncio.sleep(3600)
        finally:
            await stop_task(worker)
            cleaned.append("after the stop")

    task = asyncio.create_task(caller())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["after the stop"]


async def test_the_callers_cancellation_comes_out_even_if_the_task_swallows_it() -> None:
    # Cancelling a caller that awaits a task cancels the task; one that absorbs it and
    # returns makes ``await task`` return normally: only the cancel count tells.
    stopping = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopping.set()
            try:
                await asyncio.sleep(3600)  # winding down
            except asyncio.CancelledError:
                return  # badly behaved: swallows the second cancellation

    worker = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    caller = asyncio.create_task(stop_task(worker))
    await stopping.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert worker.done() and not worker.cancelled()


# -- stop_in_order -------------------------------------------------------------------------------


async def test_every_step_runs_with_the_grace_left_and_the_first_error_comes_out() -> None:
    graces: list[float] = []

    async def step(grace: float) -> None:
        graces.append(grace)

    async def broken(grace: float) -> None:
        graces.append(grace)
        raise RuntimeError("first")

    async def slow(grace: float) -> None:
        graces.append(grace)
        await asyncio.sleep(0.2)

    with pytest.raises(RuntimeError, match="first"):
        await stop_in_order(10.0, slow, broken, step)
    assert len(graces) == 3
    assert graces[0] == pytest.approx(10.0, abs=0.05)
    assert graces[1] == pytest.approx(9.8, abs=0.1)  # one grace for all, not one each


async def test_cancelled_during_a_step_the_rest_still_stop_at_once() -> None:
    waiting = asyncio.Event()
    graces: list[float] = []

    async def waits_out_its_grace(grace: float) -> None:
        waiting.set()
        await asyncio.sleep(grace)

    async def step(grace: float) -> None:
        graces.append(grace)

    stop = asyncio.create_task(stop_in_order(30.0, waits_out_its_grace, step, step))
    await waiting.wait()
    stop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stop
    assert graces == [0.0, 0.0]  # they ran, without keeping the caller waiting


async def test_a_step_that_swallows_the_cancellation_does_not_lose_it() -> None:
    waiting = asyncio.Event()

    async def swallows(grace: float) -> None:
        waiting.set()
        try:
            await asyncio.sleep(grace)
        except asyncio.CancelledError:
            return

    stop = asyncio.create_task(stop_in_order(30.0, swallows))
    await waiting.wait()
    stop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stop


# -- uninterrupted -------------------------------------------------------------------------------


async def test_uninterrupted_returns_what_it_awaited() -> None:
    assert await uninterrupted(asyncio.sleep(0, result=7)) == 7


async def test_uninterrupted_finishes_before_the_cancellation_comes_out() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def must_finish() -> None:
        started.set()
        await release.wait()
        finished.append("done")

    caller = asyncio.create_task(uninterrupted(must_finish()))
    await started.wait()
    caller.cancel()
    await asyncio.sleep(0.05)
    assert not caller.done()  # still waiting for it
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert finished == ["done"]
