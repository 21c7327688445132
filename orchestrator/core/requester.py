"""The Requester: send requests over NATS and get their replies through the tracker.

One Requester per process (per NATS connection) owns the correlation
tracker, the global inbox consumer and the sender of remote cancellation
notices. It is what the orchestrator uses to talk to agents, and what the
:class:`~switchboard.orchestrator.core.client.ConversationClient` (the BFF, ``switchboard
ask``, the bench) uses to talk to the orchestrator.

With tracing on (:mod:`.tracing`), every request is a client span from publish to its end,
whose context travels in the ``traceparent`` header: whatever a process sends while it
handles a request (an agent calling another agent) is a child of that request's span.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from nats.aio.client import Client as NATS

from . import headers as h
from . import tracing, wire
from .codec import DEFAULT_MAX_PAYLOAD, decode, encode
from .connection import ConnectionEvents
from .consumer import GlobalMessageConsumer
from .correlation import CorrelationTracker, PendingInfo, PendingRequest, ReplyStream, remote_error
from .deadline import MAX_SECONDS, Deadline
from .errors import PayloadTooLargeError, TimeoutPhase
from .metrics import CANCEL_NOTICES
from .options import DEFAULT_OPTIONS, RequestOptions
from .stream import EventStream, OpenStream
from .subjects import Subjects
from .tasks import stop_task

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = ["Requester"]

T = TypeVar("T")

log = structlog.get_logger("switchboard.requester")


class Requester:
    """Sends requests on one NATS connection and routes every reply back to its waiter.

    Start it before use and close it on the way out (or use ``async with``)::

        async with Requester(nc) as requester:
            msg = await requester.request("ai.agents.calculator", payload,
                                          correlation_id="conv-me-1",
                                          deadline=Deadline.after(5))

    Every request has one absolute deadline (``deadline=``, default: ``default_timeout``
    from now), which also travels to the worker; a timeout in seconds is turned into one
    at the edge (``Deadline.after(seconds)``). Everything else about sending is one
    :class:`RequestOptions`.

    ``max_pending`` bounds the requests waiting at once (past it:
    :class:`~switchboard.orchestrator.core.errors.OverloadedError` at once).
    """

    def __init__(
        self,
        nc: NATS,
        *,
        subjects: Subjects | None = None,
        max_pending: int = 10_000,
        default_timeout: float = 30.0,
        inbox_prefix: str = "_INBOX",
        events: ConnectionEvents | None = None,
        probe_interval: float = 5.0,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        max_cancel_backlog: int = 10_000,
    ) -> None:
        self._nc = nc
        self.subjects = subjects or Subjects()
        self.default_timeout = default_timeout
        self.max_payload = max_payload
        self.tracker = CorrelationTracker(max_pending=max_pending, on_abandon=self._abandoned)
        self.consumer = GlobalMessageConsumer(
            nc,
            self.tracker,
            inbox_prefix=inbox_prefix,
            events=events,
            probe_interval=probe_interval,
        )
        self._prefix = self.consumer.prefix
        self._cancels: collections.deque[tuple[str, str, str | None]] = collections.deque()
        self._max_cancel_backlog = max_cancel_backlog
        self._cancel_wake = asyncio.Event()
        self._cancel_task: asyncio.Task[None] | None = None

    @property
    def nc(self) -> NATS:
        return self._nc

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe the inbox and start the cancel sender (idempotent; restartable)."""
        self.tracker.reopen()
        await self.consumer.start()
        if self._cancel_task is None:
            self._cancel_task = asyncio.get_running_loop().create_task(
                self._send_cancels(), name="switchboard-cancel-sender"
            )

    async def close(self, grace: float = 0.0) -> None:
        """Stop sending: refuse new requests, give pending ones ``grace`` seconds, fail the rest.

        Idempotent. Pending requests still waiting after the grace period get
        :class:`~switchboard.orchestrator.core.errors.ShuttingDownError` and their workers a
        cancel notice. Cancelled while it closes, it cuts the grace short, still fails what
        is pending and stops its tasks, then re-raises the cancellation.
        """
        try:
            await self.drain(grace)
        finally:
            self._abandon_pending()
            task, self._cancel_task = self._cancel_task, None
            try:
                await stop_task(task)
                await self._flush_cancels()
            finally:
                await self.consumer.stop()

    async def drain(self, grace: float) -> None:
        """Refuse new requests; give pending ones ``grace`` seconds, then fail the rest.

        What is still pending then gets
        :class:`~switchboard.orchestrator.core.errors.ShuttingDownError` and its worker a
        cancel notice; the inbox keeps working (late replies are counted, cancel notices
        go out). Use it when a process stops taking work but must answer its own callers
        first (the BFF, before its HTTP server cancels what still runs); :meth:`close`
        does it too.
        """
        self.tracker.close()
        try:
            if grace > 0:
                await self.tracker.wait_idle(grace)
        finally:
            self._abandon_pending()

    def _abandon_pending(self) -> None:
        abandoned = self.tracker.fail_all()
        if abandoned:
            log.warning("pending requests abandoned at shutdown", count=abandoned)

    async def __aenter__(self) -> Requester:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- requests -----------------------------------------------------------------------------

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        correlation_id: str,
        deadline: Deadline | None = None,
        options: RequestOptions = DEFAULT_OPTIONS,
    ) -> Msg:
        """Send ``data`` to ``subject`` and wait for the final reply, until ``deadline``.

        Without a ``deadline``, the requester's ``default_timeout`` from now. The worker
        gets the same deadline in the ``Switchboard-Deadline`` header. ``options``: see
        :class:`RequestOptions` (heartbeats, accept and silence timeouts, target, headers).

        Raises:
            RequestTimeoutError: a deadline passed (``.phase`` says which).
            NoRespondersError: nobody subscribes to ``subject``.
            RemoteError: the worker answered with an error reply.
            OverloadedError, ShuttingDownError: refused locally, nothing was sent.
            ValueError: the deadline or the heartbeat interval cannot be sent.
        """
        entry = await self._send(
            subject, data, correlation_id=correlation_id, deadline=deadline, options=options
        )
        future = entry.future
        assert future is not None
        try:
            msg = await future
        except asyncio.CancelledError:
            self.tracker.cancel(entry)
            raise
        hdrs = msg.headers
        if hdrs is not None and h.ERROR in hdrs:
            raise remote_error(msg, subject=subject, correlation_id=correlation_id)
        return msg

    async def call(
        self,
        subject: str,
        message: Any,
        response_type: type[T],
        *,
        correlation_id: str,
        deadline: Deadline | None = None,
        options: RequestOptions = DEFAULT_OPTIONS,
    ) -> T:
        """:meth:`request` with a msgspec-encodable ``message`` and a typed reply.

        Raises:
            DecodeError: the reply is not a ``response_type``.
        """
        msg = await self.request(
            subject,
            encode(message),
            correlation_id=correlation_id,
            deadline=deadline,
            options=options,
        )
        return decode(msg.data, response_type, max_bytes=self.max_payload)

    def stream(
        self,
        subject: str,
        message: Any,
        reply_type: type[T],
        *,
        correlation_id: str,
        deadline: Deadline | None = None,
        options: RequestOptions = DEFAULT_OPTIONS,
    ) -> contextlib.AbstractAsyncContextManager[EventStream[T]]:
        """:meth:`call` that also gets the worker's progress: typed events, then the reply.

        ::

            async with requester.stream(subject, task, AgentResult, correlation_id=cid) as events:
                async for item in events:
                    match item:
                        case AgentResult():
                            ...  # the final reply, always last
                        case _:
                            ...  # a ProgressEvent

        The request is sent when the block is entered. Leaving the block early cancels the
        request (and tells the worker). Errors are raised from the iteration (see
        :class:`EventStream`).
        """
        max_bytes = self.max_payload
        return OpenStream(
            self.tracker,
            functools.partial(
                self._send,
                subject,
                encode(message),
                correlation_id=correlation_id,
                deadline=deadline,
                options=options,
                stream=True,
            ),
            lambda replies: EventStream(replies, reply_type, max_bytes=max_bytes),
        )

    def replies(
        self,
        subject: str,
        data: bytes,
        *,
        correlation_id: str,
        deadline: Deadline | None = None,
        options: RequestOptions = DEFAULT_OPTIONS,
    ) -> contextlib.AbstractAsyncContextManager[ReplyStream]:
        """:meth:`stream` with raw bytes and raw replies: progress messages, the final one last.

        ::

            async with requester.replies(subject, data, correlation_id=cid) as replies:
                async for msg in replies:
                    ...  # msg.headers["Switchboard-Kind"]: "progress", then "final"

        For payloads that are not JSON envelopes; everything else reads :meth:`stream`.
        """
        return OpenStream(
            self.tracker,
            functools.partial(
                self._send,
                subject,
                data,
                correlation_id=correlation_id,
                deadline=deadline,
                options=options,
                stream=True,
            ),
            _raw,
        )

    async def publish(
        self,
        subject: str,
        data: bytes,
        *,
        correlation_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Fire-and-forget publish (events), with errors translated."""
        hdrs = dict(headers) if headers else {}
        if correlation_id is not None:
            hdrs[h.CORRELATION_ID] = correlation_id
        if tracing.ENABLED:
            tracing.inject(hdrs)
        block = self._block(hdrs, b"", subject=subject, cid=correlation_id)
        await self._publish(subject, data, block=block, cid=correlation_id)

    def publisher(self, correlation_id: str) -> Callable[[str, bytes], Awaitable[None]]:
        """:meth:`publish` for many messages of one conversation (its progress events).

        The ``Correlation-Id`` header block is built once, not once per message (with the
        trace context of the caller, when tracing is on).
        """
        hdrs = {h.CORRELATION_ID: correlation_id}
        if tracing.ENABLED:
            tracing.inject(hdrs)
        block = self._block(hdrs, b"", subject="", cid=correlation_id)
        return functools.partial(self._publish, block=block, cid=correlation_id)

    async def _publish(self, subject: str, data: bytes, *, block: bytes, cid: str | None) -> None:
        self._check_size(block, data, subject=subject, cid=cid)
        await wire.publish(self._nc, subject, data, block, correlation_id=cid)

    def pending(self) -> list[PendingInfo]:
        """What is pending now (for debugging)."""
        return self.tracker.pending()

    # -- internals ----------------------------------------------------------------------------

    async def _send(
        self,
        subject: str,
        data: bytes,
        *,
        correlation_id: str,
        deadline: Deadline | None,
        options: RequestOptions,
        stream: bool = False,
    ) -> PendingRequest:
        if deadline is None:  # the one place a request without a deadline gets one
            deadline = Deadline.after(self.default_timeout)
        heartbeat = options.heartbeat
        silence_timeout = options.silence_timeout
        if heartbeat is not None and silence_timeout is None:
            silence_timeout = 3 * heartbeat
        hdrs = {h.CORRELATION_ID: correlation_id, h.TIMEOUT: deadline.header()}
        if heartbeat is not None:
            if not heartbeat <= MAX_SECONDS:  # also NaN
                raise ValueError(f"A heartbeat interval of {heartbeat} s cannot be sent.")
            hdrs[h.HEARTBEAT] = str(max(1, int(heartbeat * 1000)))
            hdrs[h.BEATS] = h.BATCH  # the tracker reads beats batched per requester
        if stream:
            hdrs[h.PROGRESS] = "1"
        if options.request_id is not None:
            hdrs[h.REQUEST_ID] = options.request_id
        if options.headers:
            hdrs.update(options.headers)
        sent = None
        if tracing.ENABLED:  # off: no span, no header (the hot path pays one attribute load)
            sent = tracing.start_client(subject, correlation_id, hdrs)
        try:
            block = self._block(hdrs, data, subject=subject, cid=correlation_id, request=True)
            # Registered only once nothing but the publish can fail: an entry is either
            # published or discarded, never left waiting for a reply nobody will send.
            entry = self.tracker.register(
                correlation_id=correlation_id,
                target=options.target or subject,
                subject=subject,
                deadline=deadline,
                accept_timeout=options.accept_timeout,
                silence_timeout=silence_timeout,
                stream=stream,
            )
        except BaseException as exc:
            if sent is not None:
                tracing.end_span(sent, str(getattr(exc, "code", "internal")))
            raise
        entry.request_id = options.request_id
        entry.span = sent
        try:
            await wire.publish(
                self._nc,
                subject,
                data,
                block,
                reply=self._prefix + entry.token,
                correlation_id=correlation_id,
            )
        except BaseException:
            self.tracker.discard(entry)
            raise
        return entry

    def _block(
        self,
        headers: dict[str, str],
        data: bytes,
        *,
        subject: str,
        cid: str | None,
        request: bool = False,
    ) -> bytes:
        """The message's header block; PayloadTooLargeError if it won't fit with its headers."""
        block = wire.header_block(headers)
        self._check_size(block, data, subject=subject, cid=cid, request=request)
        return block

    def _check_size(
        self, block: bytes, data: bytes, *, subject: str, cid: str | None, request: bool = False
    ) -> None:
        limit = self._nc.max_payload
        if len(block) + len(data) > limit:
            what = f"Request {cid} to {subject}" if request else f"The message to {subject}"
            raise PayloadTooLargeError(
                f"{what} is {len(data)} bytes: with its headers it exceeds the NATS "
                f"server's max_payload ({limit} bytes).",
                size=len(data),
                limit=limit,
            )

    def _abandoned(self, entry: PendingRequest) -> None:
        """Tracker callback: a waiter gave up; tell the worker (if any) to stop."""
        if len(self._cancels) >= self._max_cancel_backlog:
            CANCEL_NOTICES.labels("dropped").inc()
            return
        # Given up as not accepted in time, a request with an id may be sent again: the
        # notice says so (its id), and a worker that did take it keeps the work a while
        # for the retry to attach to, instead of throwing it away.
        unaccepted = entry.timed_out is TimeoutPhase.NOT_ACCEPTED
        retry_may_follow = entry.request_id if unaccepted else None
        self._cancels.append((entry.correlation_id, self._prefix + entry.token, retry_may_follow))
        self._cancel_wake.set()

    async def _send_cancels(self) -> None:
        while True:
            await self._cancel_wake.wait()
            self._cancel_wake.clear()
            await self._flush_cancels()

    async def _flush_cancels(self) -> None:
        while self._cancels:
            correlation_id, reply, request_id = self._cancels.popleft()
            if self._nc.is_closed or self._nc.is_draining_pubs:
                self._cancels.clear()
                return
            hdrs = {h.CORRELATION_ID: correlation_id, h.REPLY_TO_CANCEL: reply}
            if request_id is not None:
                hdrs[h.REQUEST_ID] = request_id
            try:
                await wire.publish(
                    self._nc, self.subjects.cancel(correlation_id), b"", wire.header_block(hdrs)
                )
            except Exception as exc:  # best effort: the worker's deadline still holds
                log.debug("cancel notice not sent", error=str(exc))
                continue
            CANCEL_NOTICES.labels("sent").inc()

    def __repr__(self) -> str:
        return f"<Requester inbox={self._prefix}* {self.tracker!r}>"


def _raw(replies: ReplyStream) -> ReplyStream:
    return replies
