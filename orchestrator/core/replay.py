"""One run per request id: retries attached to the work in hand, or its answer replayed.

NATS core delivers at most once, so a requester that hears nothing in time
(no responders, not accepted in time) sends the request again. The first
attempt may in fact have arrived -- the requester was slow to read, or NATS
reconnected -- and running it twice doubles its cost and its side effects.
Every attempt of one logical request therefore carries the same
``Switchboard-Request-Id``, and a worker keeps, per id:

* **in flight**: the request it is running. A retry that arrives meanwhile
  is *attached*: it runs nothing, and gets the same final reply when the
  first attempt ends (``accepted`` and heartbeats as its own; progress
  messages go to the first attempt's reply subject only).
* **done**: the final reply, for a while. A retry that arrives later gets
  it *replayed* (what Stripe and Temporal do with idempotency keys). An
  entry lives until the request's own deadline plus :data:`REPLY_MARGIN`:
  past that no attempt of the request can still be waiting. The window is
  bounded in entries and bytes; the oldest go first.

The key is the correlation id and the request id together, so one
conversation cannot read another's replies by guessing an id. Requests
without an id are never deduplicated (``nats req`` by hand). The window is
one process's; across orchestrator replicas the converse endpoint also
claims each id in JetStream (``orchestrator/claims.py``).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from . import headers as h
from .deadline import REPLY_MARGIN, Deadline

__all__ = ["ReplayWindow", "StoredReply", "replay_key"]

R = TypeVar("R")

ReplayKey = tuple[str, str]


def replay_key(headers: Mapping[str, str] | None) -> ReplayKey | None:
    """The deduplication key of a request: (correlation id, request id); None without an id."""
    if not headers:
        return None
    request_id = headers.get(h.REQUEST_ID)
    if not request_id:
        return None
    return headers.get(h.CORRELATION_ID) or "", request_id


class StoredReply:
    """A final reply kept for replay: its payload and error code (None: not an error)."""

    __slots__ = ("data", "error", "expires", "request_hash")

    def __init__(self, data: bytes, error: str | None, expires: float, request_hash: int) -> None:
        self.data = data
        self.error = error
        self.expires = expires  # time.monotonic()
        #: hash() of the request's payload: a retry is the same request, byte for byte.
        self.request_hash = request_hash

    def __repr__(self) -> str:
        return f"<StoredReply {len(self.data)} bytes error={self.error!r}>"


class InFlight(Generic[R]):
    """A request being run, and the retries attached to it.

    ``primary_gone``: the first attempt's requester gave up on it (a cancel notice);
    the work goes on for the attached retries. ``orphan_timer``: armed when the first
    attempt's requester gave up and no retry is attached yet; it ends the work unless
    a retry attaches in time.
    """

    __slots__ = ("attached", "orphan_timer", "primary", "primary_gone")

    def __init__(self, primary: R) -> None:
        self.primary = primary
        self.attached: list[R] = []
        self.primary_gone = False
        self.orphan_timer: asyncio.TimerHandle | None = None

    @property
    def waiters(self) -> int:
        """How many requesters still wait for this work's final reply."""
        return len(self.attached) + (0 if self.primary_gone else 1)

    def disarm(self) -> None:
        timer, self.orphan_timer = self.orphan_timer, None
        if timer is not None:
            timer.cancel()


class ReplayWindow(Generic[R]):
    """Requests in flight by id, and the final replies of recent ones, bounded.

    ``R`` is the endpoint's request type (the window only stores and hands them back).
    """

    def __init__(self, *, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ValueError("max_entries and max_bytes must not be negative")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._running: dict[ReplayKey, InFlight[R]] = {}
        # reply subject -> the run it waits for (cancel notices name reply subjects)
        self._waiting: dict[str, tuple[ReplayKey, R]] = {}
        self._done: collections.OrderedDict[ReplayKey, StoredReply] = collections.OrderedDict()
        self._bytes = 0

    # -- in flight ----------------------------------------------------------------------------

    def running(self, key: ReplayKey) -> InFlight[R] | None:
        return self._running.get(key)

    def begin(self, key: ReplayKey, request: R, reply: str) -> None:
        """``request`` (the first attempt, answered on ``reply``) starts running."""
        self._running[key] = InFlight(request)
        if reply:
            self._waiting[reply] = (key, request)

    def attach(self, key: ReplayKey, request: R, reply: str) -> InFlight[R] | None:
        """Attach the retry ``request`` to the run of ``key``; None when nothing runs."""
        entry = self._running.get(key)
        if entry is None:
            return None
        entry.attached.append(request)
        entry.disarm()
        if reply:
            self._waiting[reply] = (key, request)
        return entry

    def detach(self, reply: str) -> tuple[InFlight[R], R] | None:
        """Who waits on ``reply`` (the first attempt or a retry), no longer waiting there."""
        found = self._waiting.pop(reply, None)
        if found is None:
            return None
        key, request = found
        entry = self._running[key]
        if request is entry.primary:
            entry.primary_gone = True
        else:
            entry.attached.remove(request)
        return entry, request

    def end(self, key: ReplayKey, request: R, reply_of: Callable[[R], str]) -> InFlight[R] | None:
        """The run of ``request`` is over: forget it; returns its entry (attached retries)."""
        entry = self._running.get(key)
        if entry is None or entry.primary is not request:
            return None
        del self._running[key]
        entry.disarm()
        for waiter in (entry.primary, *entry.attached):
            self._waiting.pop(reply_of(waiter), None)
        return entry

    def attached(self) -> Iterator[R]:
        """Every attached retry (for heartbeats)."""
        for entry in self._running.values():
            yield from entry.attached

    # -- done ---------------------------------------------------------------------------------

    def store(
        self,
        key: ReplayKey,
        data: bytes,
        error: str | None,
        deadline: Deadline,
        *,
        request: bytes = b"",
    ) -> None:
        """Keep the final reply of ``key`` until ``deadline`` plus the reply margin.

        ``request``: the request's payload (a retry's must be the same).
        """
        if len(data) > self.max_bytes or self.max_entries == 0:
            return
        old = self._done.pop(key, None)
        if old is not None:
            self._bytes -= len(old.data)
        now = time.monotonic()
        expires = now + deadline.remaining() + REPLY_MARGIN
        self._done[key] = StoredReply(data, error, expires, hash(request))
        self._bytes += len(data)
        self._evict(now)

    def replay(self, key: ReplayKey) -> StoredReply | None:
        """The stored final reply of ``key``, if it is still in the window."""
        stored = self._done.get(key)
        if stored is None:
            return None
        if stored.expires <= time.monotonic():
            del self._done[key]
            self._bytes -= len(stored.data)
            return None
        return stored

    def _evict(self, now: float) -> None:
        done = self._done
        while done:
            key, oldest = next(iter(done.items()))
            if (
                oldest.expires > now
                and len(done) <= self.max_entries
                and self._bytes <= self.max_bytes
            ):
                return
            del done[key]
            self._bytes -= len(oldest.data)

    def __len__(self) -> int:
        return len(self._done)

    def __repr__(self) -> str:
        return (
            f"<ReplayWindow running={len(self._running)} done={len(self._done)} "
            f"bytes={self._bytes}/{self.max_bytes}>"
        )
