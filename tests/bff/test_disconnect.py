"""until_disconnected: a client that hangs up cancels the work; the caller's own
cancellation always comes out, even while the disconnect watcher is being stopped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from switchboard.bff import ClientGone, until_disconnected


class Client:
    """An ASGI ``receive`` whose client hangs up on request, and whose watcher may be
    slow to wind down once it is stopped."""

    def __init__(self, *, slow_to_stop: bool = False) -> None:
        self.hang_up = asyncio.Event()
        self.stopping = asyncio.Event()
        self.release = asyncio.Event()
        self.slow_to_stop = slow_to_stop

    async def receive(self) -> dict[str, Any]:
        try:
            await self.hang_up.wait()
        except asyncio.CancelledError:
            self.stopping.set()
            if self.slow_to_stop:
                await self.release.wait()
            raise
        return {"type": "http.disconnect"}


async def test_the_answer_comes_back_and_the_watcher_is_stopped() -> None:
    client = Client()
    assert await until_disconnected(client.receive, asyncio.sleep(0, result=42)) == 42
    assert client.stopping.is_set()


async def test_a_client_that_hangs_up_cancels_the_work() -> None:
    client = Client()
    cancelled = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    caller = asyncio.create_task(until_disconnected(client.receive, work()))
    await asyncio.sleep(0.01)
    client.hang_up.set()
    with pytest.raises(ClientGone):
        await caller
    assert cancelled.is_set()
    assert not caller.cancelling()  # the disconnect's cancellation was taken back


async def test_cancelling_the_caller_while_the_watcher_stops_raises_cancelled() -> None:
    client = Client(slow_to_stop=True)
    caller = asyncio.create_task(until_disconnected(client.receive, asyncio.sleep(0.01)))
    await client.stopping.wait()  # the work is done; the caller waits for the watcher
    caller.cancel()
    await asyncio.sleep(0.01)
    client.release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert caller.cancelled()


async def test_cancelling_the_caller_mid_work_raises_cancelled_not_client_gone() -> None:
    client = Client()
    caller = asyncio.create_task(until_disconnected(client.receive, asyncio.sleep(3600)))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert client.stopping.is_set()
