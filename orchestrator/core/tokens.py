"""Coalescing a model's text chunks into fewer messages.

A model streams a chunk per token, 20 to 200 of them a second. Sent one NATS
message (and one SSE event, one relay by the orchestrator) per token, a long
answer costs thousands of messages for text a person reads at a few words a
second. :class:`TokenCoalescer` holds chunks back and sends them together, by
one rule:

- at most one message per ``max_delay`` (50 ms by default): a chunk that comes when
  nothing was sent for ``max_delay`` goes at once -- the first one always, so time to
  first token is untouched, and so does every chunk of a model slower than 20 chunks a
  second; chunks that come sooner are held until ``max_delay`` after the last send;
- ``max_bytes`` (512) held go at once, however soon;
- what is still held goes when the block ends.

So no chunk waits longer than ``max_delay`` (plus one send), and an answer of ``d``
seconds and ``b`` bytes costs at most ``2 + d / max_delay + b / max_bytes`` messages
(the README gives measured numbers).

::

    async with TokenCoalescer(send) as tokens:
        async for chunk in stream:
            await tokens.add(chunk)

A send that fails is not retried; tokens are progress, best effort.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

import structlog

from .tasks import stop_task

__all__ = ["TOKEN_MAX_BYTES", "TOKEN_MAX_DELAY", "TokenCoalescer"]

log = structlog.get_logger("switchboard.tokens")

#: Seconds the oldest held chunk may wait before the held text is sent.
TOKEN_MAX_DELAY = 0.05
#: Bytes of held text that are sent at once, however young.
TOKEN_MAX_BYTES = 512


class TokenCoalescer:
    """Batches text chunks for ``send`` (see the module docstring); use as ``async with``.

    After the block: ``chunks`` added, ``messages`` sent, ``max_wait`` the longest any
    chunk was held (seconds).
    """

    def __init__(
        self,
        send: Callable[[str], Awaitable[object]],
        *,
        max_delay: float = TOKEN_MAX_DELAY,
        max_bytes: int = TOKEN_MAX_BYTES,
    ) -> None:
        self._send = send
        self.max_delay = max_delay
        self.max_bytes = max_bytes
        self._held: list[str] = []
        self._held_bytes = 0
        self._held_since = 0.0
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._last_sent = -math.inf
        self.chunks = 0
        self.messages = 0
        self.max_wait = 0.0

    def __repr__(self) -> str:
        return f"<TokenCoalescer chunks={self.chunks} messages={self.messages}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            await stop_task(self._timer)  # cancelled: nobody waits for the rest
            return
        await self.flush()  # also after an error: the text so far was written

    async def add(self, text: str) -> None:
        """Hold ``text`` (sent at once if it is the first, or the held bytes are enough)."""
        if not text:
            return
        self.chunks += 1
        if not self._held:
            self._held_since = time.monotonic()
        self._held.append(text)
        self._held_bytes += len(text.encode())
        wait = self._last_sent + self.max_delay - time.monotonic()
        if wait <= 0 or self._held_bytes >= self.max_bytes:
            await self.flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._tick(wait), name="token-coalescer")

    async def flush(self) -> None:
        """Send what is held now."""
        async with self._lock:
            timer, self._timer = self._timer, None
            await stop_task(timer)  # asleep, or waiting for this lock: never mid-send
            await self._send_held()

    async def _tick(self, wait: float) -> None:
        await asyncio.sleep(wait)
        async with self._lock:
            self._timer = None
            await self._send_held()

    async def _send_held(self) -> None:
        if not self._held:
            return
        text = "".join(self._held)
        self._held.clear()
        self._held_bytes = 0
        self.max_wait = max(self.max_wait, time.monotonic() - self._held_since)
        self.messages += 1
        self._last_sent = time.monotonic()
        try:
            await self._send(text)
        except Exception as exc:  # tokens are progress: the answer goes on without them
            log.debug("tokens not sent", error=str(exc))
