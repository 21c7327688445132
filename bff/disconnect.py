"""A client that hangs up cancels its conversation, all the way down to the agents."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from litestar.types import Receive

from switchboard.orchestrator import stop_task

__all__ = ["ClientGone", "until_disconnected"]

T = TypeVar("T")


class ClientGone(Exception):
    """The HTTP client disconnected before the answer was ready.

    Never seen by a caller (there is none left): the route answers
    :func:`~switchboard.bff.problems.client_gone` for the access log.
    """


async def until_disconnected(receive: Receive, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` in this task; cancel it if the client goes away first.

    Use it around a request's work whose answer is sent in one piece (a streamed
    answer learns of the disconnect from its failed sends instead). One watcher task
    listens on the request's ASGI ``receive`` for ``http.disconnect`` and cancels
    the caller's own task; the cancellation travels down (the requester's cancel
    notice reaches the agents).

    Raises:
        ClientGone: the client disconnected first; ``work`` was cancelled.
        asyncio.CancelledError: the caller itself was cancelled (including while the
            watcher is being stopped).
    """
    current = asyncio.current_task()
    assert current is not None
    disconnected = finished = False

    async def watch() -> None:
        nonlocal disconnected
        while (await receive())["type"] != "http.disconnect":
            pass
        if not finished:  # too late to matter once the work is done
            disconnected = True
            current.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not disconnected:
            raise
        current.uncancel()
        raise ClientGone from None
    finally:
        finished = True
        await stop_task(watcher)
