"""The correlation tracker: which reply belongs to which waiting coroutine.

The protocol
============

A process that sends requests owns ONE inbox prefix ``_INBOX.<nuid>.`` and
ONE wildcard subscription ``_INBOX.<nuid>.*`` (the GlobalMessageConsumer).
Each request gets a fresh random *token* (64 bits from ``os.urandom``: a
responder that sees one token learns nothing about the next); it is published with the reply
subject ``_INBOX.<nuid>.<token>``, and every message that comes back on that
subject is handed to this tracker, which finds the waiter by token. There is
no subscription per request and no task per request: a waiter is a bare
future (one final reply) or a small buffer (progress messages, then the final
reply), plus one timer handle.

The rules this module enforces:

1. **Register before publishing.** A reply can arrive before ``publish``
   returns control; it must find its waiter.
2. **Every registration has a deadline.** When it passes, the waiter gets a
   :class:`RequestTimeoutError` naming the correlation id and the target, and
   the entry is gone. Two earlier deadlines are optional, after Temporal's
   schedule-to-start / heartbeat timeouts: ``accept_timeout`` (no worker has
   said a word yet: the request sits in no one's hands) and ``silence_timeout``
   (a worker accepted, then went quiet: it died or is wedged). Workers send
   ``accepted`` and ``heartbeat`` messages when asked (``Switchboard-Heartbeat``),
   so slow LLM work can have a long deadline while a lost request is still
   noticed in seconds. One timer per entry serves all three: it is armed at
   the earliest and, when it fires early because a message moved the
   liveness horizon, it re-arms instead of failing.
3. **Unknown tokens are counted, never raised.** A reply for a token we do not
   know is *late* (we remember recently abandoned tokens) or *unknown*
   (forged, or from a previous life of this process); it is counted and
   dropped with a debug log. The consumer's callback never sees an exception.
4. **No responders fail at once.** nats-server answers a request to a subject
   nobody subscribes to with a status-503 message; the waiter fails with
   :class:`NoRespondersError` immediately instead of waiting for its deadline.
5. **Cancellation leaves nothing behind.** A waiter whose coroutine is
   cancelled removes its entry (``cancel``); ``on_abandon`` lets the owner tell
   the worker to stop (remote cancellation).
6. **Shutdown is explicit.** ``close()`` refuses new registrations with
   ``shutting_down``; ``wait_idle()`` lets in-flight ones finish; ``fail_all()``
   ends the rest with a clear error.
7. **Bounded.** At ``max_pending`` entries, ``register`` raises
   :class:`OverloadedError` at once. Stream buffers are bounded too.

The tracker is not thread-safe: it belongs to one event loop, and ``route``
is called from the consumer's subscription callback, so it must stay cheap
and never block.
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final

import msgspec
import structlog

from . import headers as h
from . import tracing
from .codec import decode
from .deadline import Deadline
from .envelopes import ErrorInfo
from .errors import (
    ErrorCode,
    NoRespondersError,
    OverloadedError,
    RemoteError,
    RequestTimeoutError,
    ShuttingDownError,
    TimeoutPhase,
)
from .metrics import (
    CORRELATION_CANCELLED,
    CORRELATION_DURATION,
    CORRELATION_NO_RESPONDERS,
    CORRELATION_PENDING,
    CORRELATION_REJECTED,
    CORRELATION_STRAY,
    CORRELATION_TIMEOUTS,
)

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from opentelemetry.trace import Span

_Observe = Callable[[float, Mapping[str, str] | None], None]

__all__ = ["CorrelationTracker", "PendingInfo", "PendingRequest", "ReplyStream", "remote_error"]

log = structlog.get_logger("switchboard.correlation")

_FINAL: Final = h.Kind.FINAL.value
_BEAT_KINDS: Final = frozenset((h.Kind.ACCEPTED.value, h.Kind.HEARTBEAT.value))
_TOKEN_BATCH: Final = 256
_PROGRESS: Final = h.Kind.PROGRESS.value


class _ErrorEnvelope(msgspec.Struct):
    """Any error reply body: ErrorReply, AgentResult and ConversationReply all carry ``error``."""

    error: ErrorInfo | None = None


def remote_error(msg: Msg, *, subject: str | None, correlation_id: str | None) -> RemoteError:
    """The :class:`RemoteError` an error reply (header ``Switchboard-Error``) stands for."""
    code = (msg.headers or {}).get(h.ERROR, ErrorCode.INTERNAL.value)
    message = f"The remote side failed with {code}."
    try:
        info = decode(msg.data, _ErrorEnvelope, max_bytes=None).error
    except Exception:  # an unreadable body still has its code
        info = None
    if info is not None and info.message:
        message = info.message
    return RemoteError(code, message, subject=subject, correlation_id=correlation_id)


class PendingInfo(msgspec.Struct, frozen=True):
    """A snapshot of one pending request, for debugging (``/debug/pending``)."""

    token: str
    correlation_id: str
    target: str
    age_s: float
    remaining_s: float
    phase: str
    stream: bool


class ReplyStream:
    """The messages of one streaming request: progress messages, then the final reply.

    Iterate with ``async for``; iteration ends after the final reply has been
    yielded, or raises the request's error (an error reply as
    :class:`RemoteError`). At most ``max_buffer`` progress
    messages wait unread; more are dropped (``dropped`` counts them), the
    final reply never is.
    """

    __slots__ = (
        "_buffer",
        "_correlation_id",
        "_done",
        "_error",
        "_max_buffer",
        "_subject",
        "_wake",
        "dropped",
    )

    def __init__(self, max_buffer: int, *, subject: str, correlation_id: str) -> None:
        self._subject = subject
        self._correlation_id = correlation_id
        self._buffer: collections.deque[Msg] = collections.deque()
        self._max_buffer = max_buffer
        self._wake: asyncio.Future[None] | None = None
        self._done = False
        self._error: BaseException | None = None
        self.dropped = 0

    def _signal(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _push(self, msg: Msg) -> None:
        if len(self._buffer) >= self._max_buffer:
            self.dropped += 1
            return
        self._buffer.append(msg)
        self._signal()

    def _finish(self, msg: Msg) -> None:
        self._buffer.append(msg)
        self._done = True
        self._signal()

    def _fail(self, exc: BaseException) -> None:
        self._error = exc
        self._done = True
        self._signal()

    def __aiter__(self) -> AsyncIterator[Msg]:
        return self

    async def __anext__(self) -> Msg:
        while True:
            if self._buffer:
                msg = self._buffer.popleft()
                hdrs = msg.headers
                if hdrs is not None and h.ERROR in hdrs:
                    raise remote_error(
                        msg, subject=self._subject, correlation_id=self._correlation_id
                    )
                return msg
            if self._done:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                raise StopAsyncIteration
            self._wake = asyncio.get_running_loop().create_future()
            try:
                await self._wake
            finally:
                self._wake = None


class PendingRequest:
    """One registered request: its token, context, deadlines and waiter."""

    __slots__ = (
        "accept_by",
        "accepted",
        "correlation_id",
        "deadline",
        "future",
        "last_seen",
        "registered_at",
        "request_id",
        "silence_timeout",
        "span",
        "stream",
        "subject",
        "target",
        "timed_out",
        "timer",
        "token",
        "wall_deadline",
    )

    def __init__(
        self,
        token: str,
        correlation_id: str,
        target: str,
        subject: str,
        registered_at: float,
        deadline: float,
        wall_deadline: Deadline,
        silence_timeout: float | None,
    ) -> None:
        self.token = token
        self.correlation_id = correlation_id
        self.target = target
        self.subject = subject
        #: event-loop times
        self.registered_at = registered_at
        self.deadline = deadline
        self.last_seen = registered_at
        self.wall_deadline = wall_deadline
        self.accept_by: float | None = None
        self.silence_timeout = silence_timeout
        self.accepted = False
        self.timer: asyncio.TimerHandle | None = None
        self.future: asyncio.Future[Msg] | None = None
        self.stream: ReplyStream | None = None
        #: The request's ``Switchboard-Request-Id`` (set by the requester), if any.
        self.request_id: str | None = None
        #: Which deadline ended it, when one did.
        self.timed_out: TimeoutPhase | None = None
        #: Its client span, when this process traces (ended with the entry).
        self.span: Span | None = None

    def __repr__(self) -> str:
        return (
            f"<PendingRequest {self.token} correlation_id={self.correlation_id!r} "
            f"target={self.target!r} accepted={self.accepted}>"
        )


class CorrelationTracker:
    """Maps reply tokens to waiting coroutines, with deadlines, bounds and cleanup.

    Use it through :class:`~switchboard.orchestrator.core.requester.Requester`, which owns the
    connection, the consumer and this tracker; use it directly only to build a
    different transport.
    """

    def __init__(
        self,
        *,
        max_pending: int = 10_000,
        stream_buffer: int = 1_000,
        remember_abandoned: int = 10_000,
        on_abandon: Callable[[PendingRequest], None] | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self.stream_buffer = stream_buffer
        self.on_abandon = on_abandon
        self._entries: dict[str, PendingRequest] = {}
        self._abandoned: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._remember_abandoned = remember_abandoned
        self._tokens: list[str] = []
        self._closed = False
        self._idle: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._durations: dict[tuple[str, str], _Observe] = {}
        CORRELATION_PENDING.track(self)

    # -- registration -------------------------------------------------------------------------

    def register(
        self,
        *,
        correlation_id: str,
        target: str,
        deadline: Deadline,
        subject: str | None = None,
        accept_timeout: float | None = None,
        silence_timeout: float | None = None,
        stream: bool = False,
    ) -> PendingRequest:
        """Register a request about to be published; returns its entry (``.token``).

        ``target`` labels metrics and errors (keep it bounded: a subject, an
        agent name); ``subject`` defaults to it.

        Raises:
            ShuttingDownError: the tracker is closed.
            OverloadedError: ``max_pending`` requests are already waiting.
        """
        if self._closed:
            CORRELATION_REJECTED.labels("shutting_down").inc()
            raise ShuttingDownError(
                f"Not sending request {correlation_id} to {target}: this process is shutting down.",
                subject=subject or target,
                correlation_id=correlation_id,
            )
        if len(self._entries) >= self.max_pending:
            CORRELATION_REJECTED.labels("overloaded").inc()
            raise OverloadedError(
                f"Not sending request {correlation_id} to {target}: {self.max_pending} requests "
                "are already pending in this process.",
                subject=subject or target,
                correlation_id=correlation_id,
            )
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        token = self._token()
        entry = PendingRequest(
            token,
            correlation_id,
            target,
            subject or target,
            now,
            deadline.loop_time(loop),
            deadline,
            silence_timeout,
        )
        first = entry.deadline
        if accept_timeout is not None:
            entry.accept_by = now + accept_timeout
            first = min(first, entry.accept_by)
        elif silence_timeout is not None:
            first = min(first, now + silence_timeout)
        if stream:
            entry.stream = ReplyStream(
                self.stream_buffer, subject=entry.subject, correlation_id=correlation_id
            )
        else:
            entry.future = loop.create_future()
        entry.timer = loop.call_at(first, self._on_timer, entry)
        self._entries[token] = entry
        return entry

    def _token(self) -> str:
        """A fresh random reply token (64 bits from os.urandom, drawn in batches)."""
        pool = self._tokens
        if not pool:
            raw = os.urandom(8 * _TOKEN_BATCH).hex()
            pool.extend(raw[i : i + 16] for i in range(0, len(raw), 16))
        return pool.pop()

    # -- routing (called by the consumer for every message on the inbox) ----------------------

    def route(self, token: str, msg: Msg) -> None:
        """Deliver ``msg`` (received on this token's reply subject) to its waiter."""
        hdrs = msg.headers
        if hdrs and hdrs.get(h.BEATS) == h.BATCH and hdrs.get(h.KIND) in _BEAT_KINDS:
            self._beats(msg.data)  # whichever of them it was sent to
            return
        entry = self._entries.get(token)
        if entry is None:
            self._stray(token)
            return
        kind = _FINAL
        if hdrs:
            if hdrs.get(h.NATS_STATUS) == h.NO_RESPONDERS_STATUS:
                self._no_responders(entry)
                return
            kind = hdrs.get(h.KIND, _FINAL)
        if kind == _FINAL:
            self._remove(entry)
            if entry.span is not None and hdrs and h.ERROR in hdrs:
                entry.span.set_attribute("switchboard.error", hdrs[h.ERROR])
            self._observe(entry, "error" if hdrs and h.ERROR in hdrs else "ok")
            if entry.future is not None:
                if not entry.future.done():
                    entry.future.set_result(msg)
            elif entry.stream is not None:
                entry.stream._finish(msg)
            return
        self._alive(entry)
        if kind == _PROGRESS and entry.stream is not None:
            entry.stream._push(msg)

    def _beats(self, data: bytes) -> None:
        """A batch of beats: every request it names is in a worker's hands (names of requests
        that ended meanwhile, or of another process's, are ignored)."""
        entries = self._entries
        for token in data.decode("ascii", "replace").split():
            entry = entries.get(token)
            if entry is not None:
                self._alive(entry)

    def _alive(self, entry: PendingRequest) -> None:
        """accepted / heartbeat / progress: the request is in a worker's hands."""
        if entry.silence_timeout is not None:
            loop = self._loop
            assert loop is not None
            entry.last_seen = now = loop.time()
            if not entry.accepted and entry.accept_by is not None:
                # The timer waits for accept_by; silence is now the nearer horizon.
                assert entry.timer is not None
                entry.timer.cancel()
                entry.timer = loop.call_at(
                    min(entry.deadline, now + entry.silence_timeout), self._on_timer, entry
                )
        if entry.span is not None and not entry.accepted:
            entry.span.add_event("accepted")  # the queue wait is over: work time starts
        entry.accepted = True

    # -- ending entries -----------------------------------------------------------------------

    def cancel(self, entry: PendingRequest) -> None:
        """The waiter gave up (its coroutine was cancelled): forget the entry."""
        if self._entries.get(entry.token) is not entry:
            return
        self._remove(entry)
        self._remember(entry.token)
        CORRELATION_CANCELLED.labels(entry.target).inc()
        self._observe(entry, "cancelled")
        if entry.future is not None and not entry.future.done():
            entry.future.cancel()
        if self.on_abandon is not None:
            self.on_abandon(entry)

    def discard(self, entry: PendingRequest) -> None:
        """Forget an entry whose request was never sent (publishing failed)."""
        if self._entries.get(entry.token) is entry:
            self._remove(entry)
            if entry.span is not None:
                tracing.end_span(entry.span, "not_sent")
                entry.span = None
            if entry.future is not None and not entry.future.done():
                entry.future.cancel()

    def fail(self, entry: PendingRequest, exc: BaseException, *, outcome: str = "error") -> None:
        """End a pending entry with ``exc`` (the waiter raises it)."""
        if self._entries.get(entry.token) is not entry:
            return
        self._remove(entry)
        self._remember(entry.token)
        self._observe(entry, outcome)
        self._deliver_error(entry, exc)

    def fail_all(self, reason: str = "this process is shutting down") -> int:
        """Fail every pending request with :class:`ShuttingDownError`; returns how many."""
        entries = list(self._entries.values())
        for entry in entries:
            self.fail(
                entry,
                ShuttingDownError(
                    f"Request {entry.correlation_id} to {entry.target} was abandoned: {reason}.",
                    subject=entry.subject,
                    correlation_id=entry.correlation_id,
                ),
                outcome="shutting_down",
            )
            if self.on_abandon is not None:
                self.on_abandon(entry)
        return len(entries)

    def close(self) -> None:
        """Refuse new registrations (``shutting_down``); pending ones continue."""
        self._closed = True

    def reopen(self) -> None:
        """Accept registrations again (after ``close``; for a restart)."""
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending (or ``timeout``); returns whether it is idle."""
        if not self._entries:
            return True
        if self._idle is None or self._idle.done():
            self._idle = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._idle)
        except TimeoutError:
            return not self._entries
        return True

    # -- introspection ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries

    def pending(self) -> list[PendingInfo]:
        """What is pending now, oldest first (for debugging)."""
        loop = self._loop
        now = loop.time() if loop is not None else 0.0
        return [
            PendingInfo(
                token=e.token,
                correlation_id=e.correlation_id,
                target=e.target,
                age_s=round(now - e.registered_at, 3),
                remaining_s=round(e.deadline - now, 3),
                phase="working" if e.accepted else "queued",
                stream=e.stream is not None,
            )
            for e in sorted(self._entries.values(), key=lambda e: e.registered_at)
        ]

    def gauge_values(self, gauge: str) -> Iterable[tuple[tuple[str, ...], float]]:
        counts = collections.Counter(e.target for e in list(self._entries.values()))
        return [((target,), float(n)) for target, n in counts.items()]

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<CorrelationTracker {state} pending={len(self._entries)}/{self.max_pending}>"

    # -- internals ----------------------------------------------------------------------------

    def _remove(self, entry: PendingRequest) -> None:
        del self._entries[entry.token]
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        if not self._entries and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def _remember(self, token: str) -> None:
        abandoned = self._abandoned
        abandoned[token] = None
        if len(abandoned) > self._remember_abandoned:
            abandoned.popitem(last=False)

    def _observe(self, entry: PendingRequest, outcome: str) -> None:
        key = (entry.target, outcome)
        observe = self._durations.get(key)
        if observe is None:
            observe = self._durations[key] = CORRELATION_DURATION.labels(*key).observe
        loop = self._loop
        assert loop is not None
        sent = entry.span
        if sent is None:
            observe(loop.time() - entry.registered_at, None)
            return
        entry.span = None
        observe(loop.time() - entry.registered_at, tracing.span_exemplar(sent.get_span_context()))
        tracing.end_span(sent, None if outcome == "ok" else outcome)

    def _deliver_error(self, entry: PendingRequest, exc: BaseException) -> None:
        if entry.future is not None:
            if not entry.future.done():
                entry.future.set_exception(exc)
        elif entry.stream is not None:
            entry.stream._fail(exc)

    def _stray(self, token: str) -> None:
        reason = "late" if token in self._abandoned else "unknown"
        CORRELATION_STRAY.labels(reason).inc()
        log.debug("stray reply dropped", token=token, reason=reason)

    def _no_responders(self, entry: PendingRequest) -> None:
        CORRELATION_NO_RESPONDERS.labels(entry.target).inc()
        self.fail(
            entry,
            NoRespondersError(
                f"No responders for request {entry.correlation_id}: nothing subscribes to "
                f"{entry.subject}.",
                subject=entry.subject,
                correlation_id=entry.correlation_id,
            ),
            outcome="no_responders",
        )

    def _on_timer(self, entry: PendingRequest) -> None:
        if self._entries.get(entry.token) is not entry:
            return
        loop = self._loop
        assert loop is not None
        now = loop.time()
        if now >= entry.deadline:
            self._timeout(entry, TimeoutPhase.DEADLINE, now)
            return
        next_at = entry.deadline
        if not entry.accepted and entry.accept_by is not None:
            if now >= entry.accept_by:
                self._timeout(entry, TimeoutPhase.NOT_ACCEPTED, now)
                return
            next_at = min(next_at, entry.accept_by)
        elif entry.silence_timeout is not None:
            # Silence counts from the last message (or from registration).
            silent_at = entry.last_seen + entry.silence_timeout
            if now >= silent_at:
                self._timeout(entry, TimeoutPhase.SILENT, now)
                return
            next_at = min(next_at, silent_at)
        entry.timer = loop.call_at(next_at, self._on_timer, entry)

    def _timeout(self, entry: PendingRequest, phase: TimeoutPhase, now: float) -> None:
        waited = now - entry.registered_at
        if phase is TimeoutPhase.NOT_ACCEPTED:
            what = f"no worker accepted it within {waited:.1f}s"
        elif phase is TimeoutPhase.SILENT:
            assert entry.silence_timeout is not None
            what = (
                f"the worker went silent (no heartbeat for {entry.silence_timeout:.1f}s, "
                f"after {waited:.1f}s)"
            )
        else:
            what = f"no reply before its deadline ({waited:.1f}s)"
        exc = RequestTimeoutError(
            f"Request {entry.correlation_id} to {entry.subject} timed out: {what}.",
            subject=entry.subject,
            correlation_id=entry.correlation_id,
            phase=phase,
        )
        CORRELATION_TIMEOUTS.labels(entry.target, phase.value).inc()
        entry.timed_out = phase
        self._remove(entry)
        self._remember(entry.token)
        self._observe(entry, "timeout")
        self._deliver_error(entry, exc)
        if self.on_abandon is not None:
            self.on_abandon(entry)
