"""Streaming requests: progress events while the work goes on, then the final reply.

A streaming request asks its worker for progress (header ``Switchboard-Progress: 1``);
the tracker buffers the worker's ``progress`` messages and then its ``final`` one
(:class:`~switchboard.orchestrator.core.correlation.ReplyStream`, raw messages).
:class:`EventStream` is the typed view every reader uses -- the BFF's SSE stream,
``switchboard ask --stream``, the executor reading an agent's progress: each progress
message decoded as a :class:`ProgressEvent`, then the final reply decoded as the
caller's reply type, then the end. Errors come from the one exception tree: an error
reply as :class:`RemoteError`, a deadline as :class:`RequestTimeoutError`, a final reply
that is not a reply as :class:`DecodeError`. A progress message that cannot be decoded
is skipped and counted (``skipped``): progress is best effort, the answer is not.

Both are entered as an async context manager that sends the request on entry and, on
leaving early, forgets it and tells the worker to stop (remote cancellation).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from . import headers as h
from .codec import decode
from .correlation import CorrelationTracker, PendingRequest, ReplyStream
from .errors import SwitchboardError
from .progress import ProgressEvent, decode_event

__all__ = ["EventStream"]

R = TypeVar("R")
S = TypeVar("S")

log = structlog.get_logger("switchboard.stream")

_PROGRESS = h.Kind.PROGRESS.value


class EventStream(Generic[R]):
    """The replies of one streaming request, decoded: progress events, then the final reply.

    Iterate with ``async for`` and tell the items apart with ``match``::

        async with requester.stream(subject, task, AgentResult, correlation_id=cid) as events:
            async for item in events:
                match item:
                    case AgentResult():
                        ...  # the final reply: always the last item
                    case _:
                        ...  # a ProgressEvent

    Raises (from the iteration):
        RemoteError: the worker answered with an error reply.
        RequestTimeoutError: a deadline passed (``.phase`` says which).
        DecodeError: the final reply is not a ``reply_type``.
    """

    __slots__ = ("_max_bytes", "_replies", "_reply_type", "skipped")

    def __init__(self, replies: ReplyStream, reply_type: type[R], *, max_bytes: int | None) -> None:
        self._replies = replies
        self._reply_type = reply_type
        self._max_bytes = max_bytes
        #: Progress messages that were not a ProgressEvent, skipped.
        self.skipped = 0

    @property
    def dropped(self) -> int:
        """Progress messages dropped unread because too many waited (the final reply never is)."""
        return self._replies.dropped

    def __aiter__(self) -> AsyncIterator[ProgressEvent | R]:
        return self

    async def __anext__(self) -> ProgressEvent | R:
        while True:
            msg = await self._replies.__anext__()
            hdrs = msg.headers
            if hdrs is None or hdrs.get(h.KIND) != _PROGRESS:
                return decode(msg.data, self._reply_type, max_bytes=self._max_bytes)
            try:
                return decode_event(msg.data, max_bytes=self._max_bytes)
            except SwitchboardError as exc:  # DecodeError, PayloadTooLargeError
                self.skipped += 1
                log.debug("progress message skipped", error=str(exc))

    def __repr__(self) -> str:
        name = getattr(self._reply_type, "__name__", self._reply_type)
        return f"<EventStream of {name} skipped={self.skipped} dropped={self.dropped}>"


class OpenStream(Generic[S]):
    """The context of a streaming request: sends on entry, cancels what is left on exit.

    ``wrap`` makes what the block gets from the tracker's stream (the raw
    :class:`ReplyStream` itself, or an :class:`EventStream` over it). A plain class rather
    than ``contextlib.asynccontextmanager``: one fewer generator and frame per agent call
    on the orchestrator's hot path.
    """

    __slots__ = ("_entry", "_send", "_tracker", "_wrap")

    def __init__(
        self,
        tracker: CorrelationTracker,
        send: Callable[[], Awaitable[PendingRequest]],
        wrap: Callable[[ReplyStream], S],
    ) -> None:
        self._tracker = tracker
        self._send = send
        self._wrap = wrap
        self._entry: PendingRequest | None = None

    async def __aenter__(self) -> S:
        self._entry = entry = await self._send()
        assert entry.stream is not None
        return self._wrap(entry.stream)

    async def __aexit__(self, *exc_info: object) -> None:
        entry = self._entry
        if entry is not None and entry.token in self._tracker:
            self._tracker.cancel(entry)
