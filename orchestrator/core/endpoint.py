"""Serving a subject: one async handler, many requests at once, every failure an error reply.

An :class:`Endpoint` subscribes a subject in a queue group and runs its
handler for each request as its own task, up to ``max_concurrency`` at once,
so a slow request never holds up the next. Around the handler, as layers
(starlette's middleware stack, structlog's processor chain):

* **context** binds the correlation id and endpoint name into every log line;
* **errors** turns any exception into an error reply with a code from the
  vocabulary and a safe message (never ``repr(exc)``); details go to the log;
* **deadline** runs the handler under the request's ``Switchboard-Timeout``.

Before the handler runs, work whose deadline has already passed is dropped
and counted, oversized payloads and bad headers get an error reply, and past
``max_concurrency`` + ``max_backlog`` requests, or ``max_inflight_bytes`` of them
(running and queued: a few large requests weigh as much as many small ones), a
request gets ``overloaded`` at once.

While a handler runs, the endpoint sends ``accepted`` and then ``heartbeat``
messages on the reply subject when the requester asked for them
(``Switchboard-Heartbeat``), and it listens on ``ai.cancel.*`` so a requester
that gave up can cancel the handler (remote cancellation).

A request that carries ``Switchboard-Request-Id`` runs once however often it
arrives (see :mod:`.replay`): a retry of work in hand is attached to it, a retry
of work done lately gets the stored final reply.

With tracing on (:mod:`.tracing`), each request that runs is a server span, child of its
sender's (``traceparent``), from the moment it was read: a ``queue`` span for the wait
before it started, events for the ``accepted`` and ``heartbeat`` messages it sent, and the
handler's own spans inside. Off, nothing of it runs.

``stop(grace)`` stops taking work, lets in-flight handlers finish within the
grace period and answers the rest (and anything still queued) with
``shutting_down``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import structlog
from nats.aio.client import Client as NATS

from . import headers as h
from . import tracing, wire
from .calls import CallPath
from .codec import DEFAULT_MAX_PAYLOAD, decode, encode
from .connection import map_nats_errors
from .deadline import Deadline
from .envelopes import ErrorInfo, ErrorReply
from .errors import RETRYABLE_CODES, DecodeError, ErrorCode, SwitchboardError
from .metrics import (
    CANCEL_NOTICES,
    ENDPOINT_CANCELLED,
    ENDPOINT_DEDUPLICATED,
    ENDPOINT_DURATION,
    ENDPOINT_EXPIRED,
    ENDPOINT_IN_FLIGHT,
    ENDPOINT_REJECTED,
    ENDPOINT_REQUESTS,
)
from .replay import InFlight, ReplayKey, ReplayWindow, replay_key
from .sizes import SERVER_MAX_PENDING
from .subjects import Subjects
from .tasks import stop_task, uninterrupted

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from opentelemetry.trace import Span

__all__ = [
    "DEFAULT_MAX_INFLIGHT_BYTES",
    "Endpoint",
    "EndpointStats",
    "ErrorBody",
    "Handler",
    "Middleware",
    "Request",
]

T = TypeVar("T")

log = structlog.get_logger("switchboard.endpoint")

Handler = Callable[["Request"], Awaitable[bytes]]
"""The one handler signature: a request in, the reply payload out."""

Middleware = Callable[[Handler], Handler]
"""A layer around a handler (logging, metrics, auth ...)."""

ErrorBody = Callable[["Request", ErrorInfo], bytes]
"""Builds the body of an error reply (e.g. an AgentResult with ok=false)."""

#: Bytes of requests an endpoint holds (running and queued) before answering overloaded.
DEFAULT_MAX_INFLIGHT_BYTES = 64 * 1024 * 1024

_REMOTE = "remote"  # the requester gave up: nobody waits for a reply
_OPERATOR = "operator"  # the whole conversation was cancelled: tell the requester
_SHUTDOWN = "shutdown"

#: Seconds work given up as not accepted in time runs on, for its retry to attach to it.
RETRY_GRACE = 2.0
#: Seconds a handler cancelled at shutdown has to end before it is left behind.
CUT_SHORT_S = 1.0
#: Reply subjects of given-up requests remembered in case the request is read after its
#: cancel notice (every endpoint hears every cancel notice: most are other workers').
MAX_GIVEN_UP = 10_000
#: Most requests one batched beat names (16-character tokens: about 70 KB).
MAX_BEAT_BATCH = 4096
_BEAT_BATCH_BLOCK = wire.header_block({h.KIND: h.Kind.HEARTBEAT.value, h.BEATS: h.BATCH})


class Request:
    """One request as a handler sees it."""

    __slots__ = (
        "_endpoint",
        "accepted_sent",
        "batch_beats",
        "cancel_reason",
        "correlation_id",
        "data",
        "deadline",
        "error",
        "headers",
        "heartbeat",
        "msg",
        "next_beat",
        "replied",
        "reply",
        "span",
        "subject",
        "wants_progress",
    )

    def __init__(self, endpoint: Endpoint, msg: Msg, deadline: Deadline) -> None:
        self._endpoint = endpoint
        self.msg = msg
        self.subject: str = msg.subject
        self.reply: str = msg.reply
        self.data: bytes = msg.data
        self.headers: Mapping[str, str] = msg.headers or {}
        self.correlation_id: str | None = self.headers.get(h.CORRELATION_ID)
        self.deadline = deadline
        self.wants_progress = self.headers.get(h.PROGRESS) == "1"
        self.heartbeat: float | None = None
        #: The requester reads beats batched with its other requests' (``h.BEATS``).
        self.batch_beats = self.headers.get(h.BEATS) == h.BATCH
        self.accepted_sent = False
        self.next_beat = 0.0
        #: Set by the error layer: the reply is an error reply with this code.
        self.error: ErrorInfo | None = None
        self.cancel_reason: str | None = None
        #: The final reply went out already (the endpoint answered for a handler that would
        #: not stop): nothing more may be sent for this request.
        self.replied = False
        #: Its server span, while it runs in a process that traces.
        self.span: Span | None = None

    def decode(self, type_: type[T]) -> T:
        """The payload as ``type_``.

        Raises:
            DecodeError: the payload is not a valid ``type_`` (the caller gets bad_request).
        """
        return decode(self.data, type_, max_bytes=self._endpoint.max_payload)

    async def progress(self, data: bytes) -> bool:
        """Send a progress message to the requester, if it asked for them; returns whether sent."""
        if not (self.wants_progress and self.reply):
            return False
        await self._endpoint._send(self, data, h.Kind.PROGRESS)
        return True

    def __repr__(self) -> str:
        return f"<Request {self.subject} correlation_id={self.correlation_id!r}>"


class EndpointStats:
    """Counters for the NATS service API (``$SRV.STATS``)."""

    __slots__ = ("last_error", "num_errors", "num_requests", "processing_time_ns")

    def __init__(self) -> None:
        self.num_requests = 0
        self.num_errors = 0
        self.processing_time_ns = 0
        self.last_error = ""

    @property
    def average_processing_time_ns(self) -> int:
        return self.processing_time_ns // self.num_requests if self.num_requests else 0


def default_error_body(request: Request, error: ErrorInfo) -> bytes:
    return encode(ErrorReply(correlation_id=request.correlation_id, error=error))


class Endpoint:
    """Serves ``subject`` (in queue group ``queue``) with ``handler``.

    ``name`` labels metrics and logs (an agent name, ``orchestrator``);
    ``default_timeout`` is the deadline of requests that carry no
    ``Switchboard-Timeout`` header (e.g. from ``nats req``).
    ``replay_max_entries`` and ``replay_max_bytes`` bound the final replies kept
    for retries; ``retry_grace`` is how long work whose requester gave up on it as
    "not accepted in time" goes on, waiting for the retry to attach, before it is
    cancelled (None: it runs to its deadline, for a retry that may come anywhere).
    """

    def __init__(
        self,
        nc: NATS,
        *,
        subject: str,
        handler: Handler,
        name: str | None = None,
        queue: str | None = None,
        max_concurrency: int = 64,
        max_backlog: int = 1_000,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES,
        default_timeout: float = 60.0,
        subjects: Subjects | None = None,
        error_body: ErrorBody = default_error_body,
        middleware: Sequence[Middleware] = (),
        description: str = "",
        metadata: Mapping[str, str] | None = None,
        heartbeat_tick: float = 0.2,
        replay_max_entries: int = 10_000,
        replay_max_bytes: int = 64 * 1024 * 1024,
        retry_grace: float | None = RETRY_GRACE,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._nc = nc
        self.subject = subject
        self.name = name or subject
        self.queue = queue
        self.max_concurrency = max_concurrency
        self.max_backlog = max_backlog
        self.max_payload = max_payload
        self.max_inflight_bytes = max_inflight_bytes
        #: The largest request admitted so far: while (requests held + 1) times this fits
        #: the byte budget, admission need not add the sizes up.
        self._largest = 0
        self.default_timeout = default_timeout
        self.subjects = subjects or Subjects()
        self.description = description
        self.metadata = dict(metadata or {})
        self.stats = EndpointStats()
        self._error_body = error_body
        self._heartbeat_tick = heartbeat_tick
        stack: Handler = handler
        for layer in reversed(middleware):
            stack = layer(stack)
        self._stack = _context_layer(self, _error_layer(self, _deadline_layer(stack)))
        self._sub: Subscription | None = None
        self._cancel_sub: Subscription | None = None
        self._stopping = False
        self._tasks: dict[asyncio.Task[None], Request] = {}
        self._by_reply: dict[str, asyncio.Task[None]] = {}
        #: Reply subjects that cancel notices named before their request arrived here (a
        #: worker whose loop was blocked reads both late): those requests are not run.
        self._given_up: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._backlog: collections.deque[tuple[Msg, Deadline | None]] = collections.deque()
        self._ticker: asyncio.Task[None] | None = None
        self._replay: ReplayWindow[Request] = ReplayWindow(
            max_entries=replay_max_entries, max_bytes=replay_max_bytes
        )
        self.retry_grace = retry_grace
        self._requests_ok = ENDPOINT_REQUESTS.labels(self.name, "ok")
        self._duration = ENDPOINT_DURATION.labels(self.name)
        ENDPOINT_IN_FLIGHT.track(self)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._sub is not None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        """Subscribe (idempotent; restartable after ``stop``)."""
        if self._sub is not None:
            return
        self._stopping = False
        with map_nats_errors(subject=self.subject):
            self._cancel_sub = await self._nc.subscribe(
                self.subjects.all_cancels, cb=self._on_cancel
            )
            # Requests the loop has not read yet: as many bytes as the server would buffer
            # (admission answers overloaded past max_inflight_bytes; nothing dropped unseen).
            self._sub = await self._nc.subscribe(
                self.subject,
                queue=self.queue or "",
                cb=self._on_msg,
                pending_msgs_limit=1_000_000,
                pending_bytes_limit=SERVER_MAX_PENDING,
            )
            # The server knows the subscription when start() returns.
            await uninterrupted(self._nc.flush())
        log.debug("endpoint started", endpoint=self.name, subject=self.subject, queue=self.queue)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking work; finish in-flight work within ``grace`` s; fail the rest.

        Idempotent. Requests still queued in this process get ``shutting_down``. Cancelled
        while it stops, it cuts the grace short (in-flight work gets ``shutting_down`` at
        once), stops its tasks, then re-raises the cancellation.
        """
        sub, self._sub = self._sub, None
        if sub is None:
            return
        self._stopping = True
        try:
            if not self._nc.is_closed:
                with contextlib.suppress(Exception):
                    # UNSUB, then the queued messages get shutting_down
                    await uninterrupted(sub.drain())  # type: ignore[no-untyped-call]
            await self._reject_backlog()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=grace)
        finally:
            await self._reject_backlog()  # if cancelled before it was rejected
            await self._cut_short()
            ticker, self._ticker = self._ticker, None
            await stop_task(ticker)
            cancel_sub, self._cancel_sub = self._cancel_sub, None
            if cancel_sub is not None and not self._nc.is_closed:
                with contextlib.suppress(Exception):
                    await cancel_sub.unsubscribe()
        log.debug("endpoint stopped", endpoint=self.name)

    async def _reject_backlog(self) -> None:
        while self._backlog:
            msg, _deadline = self._backlog.popleft()
            await self._reject(
                msg,
                ErrorCode.SHUTTING_DOWN,
                f"The {self.name} worker is shutting down; retry elsewhere.",
            )

    async def _cut_short(self) -> None:
        """Cancel the handlers still running; each answers ``shutting_down`` as it ends.

        A handler that does not end within :data:`CUT_SHORT_S` of its cancellation (it
        swallowed it) cannot hold the shutdown: the endpoint answers ``shutting_down`` for
        it, names it in a warning, and leaves it behind (the process exits without it).
        """
        late = [task for task in self._tasks if not task.done()]
        if not late:
            return
        for task in late:
            self._tasks[task].cancel_reason = _SHUTDOWN
            task.cancel()
        log.warning("in-flight requests cut short at shutdown", endpoint=self.name, count=len(late))
        _done, stubborn = await asyncio.wait(late, timeout=CUT_SHORT_S)
        if not stubborn:
            return
        requests = [self._tasks[task] for task in stubborn if task in self._tasks]
        log.warning(
            "handlers overstayed their cancellation at shutdown: left behind",
            endpoint=self.name,
            correlation_ids=[request.correlation_id for request in requests],
        )
        for request in requests:
            request.heartbeat = None
            info = ErrorInfo(
                ErrorCode.SHUTTING_DOWN,
                f"The {self.name} worker shut down before finishing; retry elsewhere.",
            )
            await self._send(
                request, self._error_payload(request, info), h.Kind.FINAL, error=info.code
            )
            request.replied = True

    # -- receiving ----------------------------------------------------------------------------

    async def _on_msg(self, msg: Msg) -> None:
        """The subscription callback: cheap checks, then hand the request to a task."""
        try:
            await self._dispatch(msg)
        except Exception:  # never let one message kill the subscription's task
            log.exception("failed to dispatch a request", endpoint=self.name)

    async def _dispatch(self, msg: Msg) -> None:
        if tracing.ENABLED:
            _arrived(msg)
        hdrs = msg.headers
        raw_deadline = hdrs.get(h.TIMEOUT) if hdrs else None
        deadline: Deadline | None = None
        if self._stopping:
            await self._reject(
                msg,
                ErrorCode.SHUTTING_DOWN,
                f"The {self.name} worker is shutting down; retry elsewhere.",
            )
            return
        if self._given_up and msg.reply in self._given_up:
            del self._given_up[msg.reply]
            ENDPOINT_CANCELLED.labels(self.name).inc()
            log.info(
                "request dropped: its requester gave up before it was read",
                endpoint=self.name,
                correlation_id=hdrs.get(h.CORRELATION_ID) if hdrs else None,
            )
            return
        if raw_deadline is not None:
            try:
                deadline = Deadline.from_header(raw_deadline)
            except DecodeError as exc:
                await self._reject(msg, ErrorCode.BAD_REQUEST, str(exc))
                return
            if deadline.expired:
                # Its requester has given up (or gave a spent budget): nobody waits for it.
                ENDPOINT_EXPIRED.labels(self.name).inc()
                log.warning(
                    "request dropped: its time was spent when it arrived",
                    endpoint=self.name,
                    correlation_id=hdrs.get(h.CORRELATION_ID) if hdrs else None,
                    timeout_ms=raw_deadline,
                )
                return
        if await self._deduplicate(msg, deadline):
            return
        if len(msg.data) > self.max_payload:
            await self._reject(
                msg,
                ErrorCode.TOO_LARGE,
                f"The request is {len(msg.data)} bytes, over the limit of {self.max_payload} "
                "bytes.",
            )
            return
        if self._over_byte_budget(len(msg.data)):
            await self._reject(
                msg,
                ErrorCode.OVERLOADED,
                f"The {self.name} worker holds {self._held_bytes()} bytes of requests, the "
                f"most it takes is {self.max_inflight_bytes}; retry later.",
            )
            return
        if len(self._tasks) >= self.max_concurrency:
            if len(self._backlog) >= self.max_backlog:
                await self._reject(
                    msg,
                    ErrorCode.OVERLOADED,
                    f"The {self.name} worker is at capacity ({self.max_concurrency} running, "
                    f"{len(self._backlog)} queued); retry later.",
                )
                return
            self._backlog.append((msg, deadline))
            return
        self._start(msg, deadline)

    def _over_byte_budget(self, size: int) -> bool:
        """Whether admitting ``size`` more bytes passes ``max_inflight_bytes`` (a request
        alone is always admitted: there is nothing to wait for)."""
        self._largest = max(self._largest, size)
        held = len(self._tasks) + len(self._backlog)
        if not held or (held + 1) * self._largest <= self.max_inflight_bytes:
            return False  # the usual case, without adding sizes up
        return self._held_bytes() + size > self.max_inflight_bytes

    def _held_bytes(self) -> int:
        return sum(len(r.data) for r in self._tasks.values()) + sum(
            len(msg.data) for msg, _deadline in self._backlog
        )

    def _start(self, msg: Msg, deadline: Deadline | None) -> None:
        request = Request(self, msg, deadline or Deadline.after(self.default_timeout))
        if self._dequeued_retry(request):
            return
        self.stats.num_requests += 1
        run = self._run_traced(request) if tracing.ENABLED else self._run(request)
        task = asyncio.get_running_loop().create_task(run)
        self._tasks[task] = request
        if request.reply:
            self._by_reply[request.reply] = task
        task.add_done_callback(self._finished)
        key = replay_key(request.headers)
        if key is not None:
            self._replay.begin(key, request, request.reply)
        self._beat_for(request)

    async def _run_traced(self, request: Request) -> None:
        """:meth:`_run` inside the request's server span (child of its sender's)."""
        served = request.span = tracing.start_server(
            request.subject,
            request.correlation_id,
            request.headers,
            endpoint=self.name,
            arrived_ns=getattr(request.msg, _ARRIVED, None),
            started_ns=time.time_ns(),
        )
        try:
            with tracing.use_span(served):
                await self._run(request)
        finally:
            request.span = None
            if request.cancel_reason is not None:  # remote, operator, shutdown
                served.set_attribute("switchboard.cancelled", request.cancel_reason)
            tracing.end_span(served, request.error.code if request.error else None)

    async def _run(self, request: Request) -> None:
        started = time.perf_counter_ns()
        try:
            data = await self._stack(request)
        except asyncio.CancelledError:
            if request.cancel_reason is None:
                raise
            # We cancelled it ourselves, for a known reason: the task ends normally.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            if request.cancel_reason != _SHUTDOWN:
                ENDPOINT_CANCELLED.labels(self.name).inc()
                log.info(
                    "handler cancelled",
                    endpoint=self.name,
                    correlation_id=request.correlation_id,
                    by=request.cancel_reason,
                )
            if request.cancel_reason == _REMOTE:
                return
            if request.cancel_reason == _OPERATOR:
                request.error = ErrorInfo(
                    ErrorCode.CANCELLED,
                    f"Conversation {request.correlation_id} was cancelled "
                    f"({self.subjects.cancel(request.correlation_id or '?')}).",
                )
            else:
                request.error = ErrorInfo(
                    ErrorCode.SHUTTING_DOWN,
                    f"The {self.name} worker shut down before finishing; retry elsewhere.",
                )
            data = self._error_payload(request, request.error)
        finally:
            # The work is over: no accepted or heartbeat may follow (the requester lets the
            # request go at the final reply, and would count what came after as a forgery).
            request.heartbeat = None
            elapsed = time.perf_counter_ns() - started
            self.stats.processing_time_ns += elapsed
            if request.span is None:
                self._duration.observe(elapsed / 1e9)
            else:
                self._duration.observe(elapsed / 1e9, tracing.exemplar())
        if request.replied:
            return  # answered for it at shutdown, when it would not stop
        code = None if request.error is None else request.error.code
        # Counted by what was sent: an answer too large for NATS went out as a too_large error.
        code = await self._send(request, data, h.Kind.FINAL, error=code)
        await self._answer_attached(request, data, code)
        if code is None:
            self._requests_ok.inc()
        else:
            self.stats.num_errors += 1
            self.stats.last_error = request.error.message if request.error else code
            ENDPOINT_REQUESTS.labels(self.name, code).inc()

    def _finished(self, task: asyncio.Task[None]) -> None:
        request = self._tasks.pop(task)
        if request.reply:
            self._by_reply.pop(request.reply, None)
        key = replay_key(request.headers)
        if key is not None:
            self._rerun_attached(key, request)
        # A slot is free: start queued work, skipping what expired while it waited.
        while self._backlog and len(self._tasks) < self.max_concurrency and not self._stopping:
            msg, deadline = self._backlog.popleft()
            if deadline is not None and deadline.expired:
                ENDPOINT_EXPIRED.labels(self.name).inc()
                continue
            self._start(msg, deadline)

    # -- sending ------------------------------------------------------------------------------

    async def _send(
        self, request: Request, data: bytes, kind: h.Kind, *, error: str | None = None
    ) -> str | None:
        """Send one reply; returns the error code it carried (None: not an error reply).

        A final reply too large for NATS is replaced by a ``too_large`` error reply.
        """
        if not request.reply:
            return error
        hdrs = {h.KIND: kind.value}
        if request.correlation_id is not None:
            hdrs[h.CORRELATION_ID] = request.correlation_id
        if error is not None:
            hdrs[h.ERROR] = error
        block = wire.header_block(hdrs)
        if len(block) + len(data) > self._nc.max_payload:
            # Too big for the server (it would drop our connection): the requester gets a
            # too_large error instead of waiting for its deadline; progress is just skipped.
            log.warning(
                "reply too large for NATS",
                endpoint=self.name,
                size=len(data),
                kind=kind.value,
                correlation_id=request.correlation_id,
            )
            if kind is not h.Kind.FINAL:
                return error
            info = ErrorInfo(
                ErrorCode.TOO_LARGE,
                f"The {self.name} worker's answer ({len(data)} bytes, "
                f"{len(block) + len(data)} with its headers) is larger than NATS allows "
                f"({self._nc.max_payload} bytes).",
            )
            request.error = info
            data = default_error_body(request, info)
            hdrs[h.ERROR] = info.code
            block = wire.header_block(hdrs)
        try:
            await wire.publish(self._nc, request.reply, data, block)
        except Exception as exc:  # the requester will time out; nothing else to do
            log.warning(
                "reply not sent",
                endpoint=self.name,
                kind=kind.value,
                correlation_id=request.correlation_id,
                error=type(exc).__name__,
            )
        return hdrs.get(h.ERROR)

    def _error_payload(self, request: Request, info: ErrorInfo) -> bytes:
        """The service's error body; if building it fails, the generic one (never no reply)."""
        try:
            return self._error_body(request, info)
        except Exception:
            log.exception("error body failed; sending the generic one", endpoint=self.name)
            return default_error_body(request, info)

    async def _reject(self, msg: Msg, code: ErrorCode, message: str) -> None:
        ENDPOINT_REJECTED.labels(self.name, code.value).inc()
        request = Request(self, msg, Deadline.after(0))
        info = ErrorInfo(code, message)
        log.debug(
            "request rejected",
            endpoint=self.name,
            code=code.value,
            correlation_id=request.correlation_id,
        )
        await self._send(
            request, self._error_payload(request, info), h.Kind.FINAL, error=code.value
        )

    # -- concurrency, heartbeats, cancellation -----------------------------------------------

    def _beat_for(self, request: Request) -> None:
        """Beat for ``request`` while it runs, if its requester asked (``h.HEARTBEAT``)."""
        heartbeat = _milliseconds(request.headers.get(h.HEARTBEAT))
        if heartbeat is not None and request.reply:
            request.heartbeat = max(0.01, heartbeat)
            self._ensure_ticker()

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(
                self._tick(), name=f"switchboard-heartbeats {self.name}"
            )

    async def _tick(self) -> None:
        """Send ``accepted`` then ``heartbeat`` messages for requests that asked for them.

        Requests whose requester reads batches (``h.BEATS``) get one message per requester
        per tick (:meth:`_beat_batch`); the others one each, as the NATS CLI expects.
        """
        while True:
            await asyncio.sleep(self._heartbeat_tick)
            now = time.monotonic()
            beating = [
                r
                for r in itertools.chain(self._tasks.values(), self._replay.attached())
                if r.heartbeat is not None
            ]
            if not beating:
                return
            batches: dict[str, list[Request]] = {}
            for request in beating:
                if request.batch_beats:
                    batches.setdefault(request.reply.rpartition(".")[0], []).append(request)
                    continue
                if request.heartbeat is None:
                    continue  # finished while an earlier beat of this round was sent
                if not request.accepted_sent:
                    request.accepted_sent = True
                    request.next_beat = now + request.heartbeat
                    if request.span is not None:
                        request.span.add_event("accepted sent")
                    await self._send(request, b"", h.Kind.ACCEPTED)
                elif now >= request.next_beat:
                    request.next_beat = now + request.heartbeat
                    if request.span is not None:
                        request.span.add_event("heartbeat sent")
                    await self._send(request, b"", h.Kind.HEARTBEAT)
            for group in batches.values():
                await self._beat_batch(group, now)

    async def _beat_batch(self, group: list[Request], now: float) -> None:
        """One beat for the requests of one requester, when any of them is due.

        The requests at least half way to their next beat ride along (their beat is
        reset), so a steady stream of requests costs one message per tick, not one per
        request per interval. The batch goes to the reply subject of one of them that is
        still running (nothing is sent on a subject after its final reply), in chunks of
        :data:`MAX_BEAT_BATCH` names.
        """
        if not any(
            r.heartbeat is not None and (not r.accepted_sent or now >= r.next_beat) for r in group
        ):
            return
        members = [
            r
            for r in group
            if r.heartbeat is not None
            and (not r.accepted_sent or now >= r.next_beat - r.heartbeat / 2)
        ]
        for start in range(0, len(members), MAX_BEAT_BATCH):
            chunk = [r for r in members[start : start + MAX_BEAT_BATCH] if r.heartbeat]
            if not chunk:
                continue  # finished while the chunk before was sent
            for request in chunk:
                assert request.heartbeat is not None
                if request.span is not None:
                    request.span.add_event(
                        "heartbeat sent" if request.accepted_sent else "accepted sent"
                    )
                request.accepted_sent = True
                request.next_beat = now + request.heartbeat
            names = " ".join(r.reply.rpartition(".")[2] for r in chunk)
            try:
                await wire.publish(
                    self._nc, chunk[0].reply, names.encode("ascii"), _BEAT_BATCH_BLOCK
                )
            except Exception as exc:  # the requesters may time out; nothing else to do
                log.warning("beat not sent", endpoint=self.name, error=type(exc).__name__)

    async def _on_cancel(self, msg: Msg) -> None:
        """``ai.cancel.<correlation_id>``: cancel one request, or all of that conversation.

        A requester that gave up names its reply subject (``Switchboard-Cancel-Reply``) and
        gets no answer; a conversation-wide cancel (an operator, ``nats pub``) answers each
        cancelled request with a ``cancelled`` error so nobody waits for nothing. Requests
        still queued here (at ``max_concurrency``) are withdrawn the same way: they never run.
        """
        try:
            correlation_id = msg.subject.rsplit(".", 1)[-1]
            reply = msg.headers.get(h.REPLY_TO_CANCEL) if msg.headers else None
            # A subtree cancel (a caller died): only the calls on that path and below it.
            below = msg.headers.get(h.CANCEL_PATH) if msg.headers and not reply else None
            if reply and self._detach(reply, msg.headers or {}):
                return
            if reply:
                task = self._by_reply.get(reply)
                targets = [task] if task is not None else []
            else:
                targets = [
                    t
                    for t, r in self._tasks.items()
                    if r.correlation_id == correlation_id and _on_path(r.headers, below)
                ]
            queued = self._withdraw(reply, correlation_id, below) if self._backlog else []
            if not targets and not queued:
                if reply:  # its request may not have been read yet
                    self._given_up[reply] = None
                    if len(self._given_up) > MAX_GIVEN_UP:
                        self._given_up.popitem(last=False)
                return
            CANCEL_NOTICES.labels("received").inc()
            for task in targets:
                self._tasks[task].cancel_reason = _REMOTE if reply else _OPERATOR
                task.cancel()
            for request in queued:
                ENDPOINT_CANCELLED.labels(self.name).inc()
                if not reply:
                    await self._reject(
                        request,
                        ErrorCode.CANCELLED,
                        f"Conversation {correlation_id} was cancelled "
                        f"({self.subjects.cancel(correlation_id)}).",
                    )
        except Exception:
            log.exception("failed to process a cancel notice", endpoint=self.name)

    def _withdraw(self, reply: str | None, correlation_id: str, below: str | None) -> list[Msg]:
        """Take the queued requests a cancel notice names out of the backlog."""
        if reply:
            hit = [e for e in self._backlog if e[0].reply == reply]
        else:
            hit = [
                e
                for e in self._backlog
                if e[0].headers
                and e[0].headers.get(h.CORRELATION_ID) == correlation_id
                and _on_path(e[0].headers, below)
            ]
        for entry in hit:
            self._backlog.remove(entry)
        return [msg for msg, _deadline in hit]

    # -- retries: one run per request id (see replay.py) ---------------------------------------

    async def _deduplicate(self, msg: Msg, deadline: Deadline | None) -> bool:
        """Answer a retry without running it: replay the stored reply, or attach it.

        Returns whether the request was taken care of (False: run it as usual).
        """
        key = replay_key(msg.headers)
        if key is None:
            return False
        request = Request(self, msg, deadline or Deadline.after(self.default_timeout))
        answer = self._retry_answer(key, request)
        if answer is not None:
            await self._answer_retry(request, *answer)
            return True
        if not self._attach(key, request):
            return False
        if request.heartbeat is not None:
            # At once: its requester has already waited once for an ``accepted``.
            request.accepted_sent = True
            request.next_beat = time.monotonic() + request.heartbeat
            await self._send(request, b"", h.Kind.ACCEPTED)
        return True

    def _dequeued_retry(self, request: Request) -> bool:
        """A retry that waited in the backlog while its first attempt ran: attach or replay.

        Returns whether it was taken care of (False: run it).
        """
        key = replay_key(request.headers)
        if key is None:
            return False
        answer = self._retry_answer(key, request)
        if answer is None:
            return self._attach(key, request)
        # Owned like any request's task: stop() waits for it, _finished() forgets it.
        task = asyncio.get_running_loop().create_task(self._answer_retry(request, *answer))
        self._tasks[task] = request
        task.add_done_callback(self._finished)
        return True

    def _retry_answer(self, key: ReplayKey, request: Request) -> tuple[bytes, str | None] | None:
        """The final reply a retry gets without running: stored, or bad_request for an id
        reused with another payload; None: attach it or run it."""
        stored = self._replay.replay(key)
        running = self._replay.running(key)
        if stored is not None:
            same = stored.request_hash == hash(request.data)
        elif running is not None:
            same = running.primary.data == request.data
        else:
            return None
        if not same:
            ENDPOINT_REJECTED.labels(self.name, ErrorCode.BAD_REQUEST.value).inc()
            request.error = ErrorInfo(
                ErrorCode.BAD_REQUEST,
                f"Request id {key[1]} of {request.correlation_id} was already used for a "
                "different request; give each request its own id.",
            )
            return self._error_payload(request, request.error), request.error.code
        if stored is None:
            return None
        ENDPOINT_DEDUPLICATED.labels(self.name, "replayed").inc()
        log.info(
            "retry answered from the replay window",
            endpoint=self.name,
            correlation_id=request.correlation_id,
        )
        return stored.data, stored.error

    async def _answer_retry(self, request: Request, data: bytes, error: str | None) -> None:
        await self._send(request, data, h.Kind.FINAL, error=error)

    def _attach(self, key: ReplayKey, request: Request) -> bool:
        """Attach ``request`` to the running attempt with its id; False when there is none."""
        if self._replay.attach(key, request, request.reply) is None:
            return False
        ENDPOINT_DEDUPLICATED.labels(self.name, "attached").inc()
        log.info(
            "retry attached to the attempt in flight",
            endpoint=self.name,
            correlation_id=request.correlation_id,
        )
        self._beat_for(request)
        return True

    def _rerun_attached(self, key: ReplayKey, request: Request) -> None:
        """The run of ``request`` is over; retries still attached to it (it was cancelled for
        its own requester just as they attached) get a run of their own: one runs, the
        others attach to it."""
        entry = self._replay.end(key, request, _reply_of)
        if entry is None or not entry.attached or self._stopping:
            return
        log.info(
            "first attempt cancelled as a retry attached: running the retry",
            endpoint=self.name,
            correlation_id=request.correlation_id,
        )
        for retry in entry.attached:
            self._start(retry.msg, retry.deadline)

    async def _answer_attached(self, request: Request, data: bytes, code: str | None) -> None:
        """The first attempt has its final reply: keep it for replay, send it to the retries."""
        key = replay_key(request.headers)
        if key is None:
            return
        if code not in RETRYABLE_CODES:  # a refusal did nothing: the retry may do it
            self._replay.store(key, data, code, request.deadline, request=request.data)
        entry = self._replay.end(key, request, _reply_of)
        if entry is None:
            return
        for retry in entry.attached:
            retry.heartbeat = None
            await self._send(retry, data, h.Kind.FINAL, error=code)

    def _detach(self, reply: str, headers: Mapping[str, str]) -> bool:
        """A cancel notice for one attempt of a request with an id; False: cancel as usual.

        The work goes on while another attempt waits for it. A notice that carries the
        request id says its requester gave up as "not accepted in time" and may retry:
        the work goes on for ``retry_grace`` seconds for that retry to attach.
        """
        found = self._replay.detach(reply)
        if found is None:
            return False
        entry, request = found
        request.heartbeat = None  # nobody listens there any more
        if request is entry.primary and not entry.attached:
            if not headers.get(h.REQUEST_ID):
                return False  # cancelled as any request is
            if self.retry_grace is not None:
                entry.orphan_timer = asyncio.get_running_loop().call_later(
                    self.retry_grace, self._cancel_orphan, entry
                )
        elif entry.waiters == 0:
            self._cancel_orphan(entry)
        CANCEL_NOTICES.labels("received").inc()
        return True

    def _cancel_orphan(self, entry: InFlight[Request]) -> None:
        """Nobody waits for this work any more: cancel it (as a requester's cancel would)."""
        entry.orphan_timer = None
        task = self._by_reply.get(entry.primary.reply)
        if task is None or task.done() or entry.waiters:
            return
        self._tasks[task].cancel_reason = _REMOTE
        task.cancel()

    def gauge_values(self, gauge: str) -> Iterable[tuple[tuple[str, ...], float]]:
        return [((self.name,), float(len(self._tasks)))]

    def __repr__(self) -> str:
        state = "running" if self._sub is not None else "stopped"
        return (
            f"<Endpoint {self.name} {self.subject} queue={self.queue!r} {state} "
            f"in_flight={len(self._tasks)}/{self.max_concurrency}>"
        )


_ARRIVED = "_switchboard_arrived_ns"


def _arrived(msg: Msg) -> None:
    """Stamp when ``msg`` was read (tracing only): its server span starts there, and the
    wait until its work started (in the backlog, at ``max_concurrency``) is its queue span."""
    setattr(msg, _ARRIVED, time.time_ns())


def _reply_of(request: Request) -> str:
    return request.reply


def _on_path(headers: Mapping[str, str], below: str | None) -> bool:
    """Whether a request is hit by a cancel notice that names call path ``below`` (None:
    the whole conversation): its own ``Switchboard-Call-Path`` is that path or under it."""
    if below is None:
        return True
    path = headers.get(h.CALL_PATH)
    if path is None:
        return False
    try:
        return CallPath.parse(path).under(below)
    except DecodeError:
        return False


def _milliseconds(value: str | None) -> float | None:
    """A header of whole milliseconds, in seconds; None when absent or not plain digits."""
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 9:
        return None
    return int(value) / 1000.0


# -- the layers around every handler -----------------------------------------------------------


def _deadline_layer(inner: Handler) -> Handler:
    async def with_deadline(request: Request) -> bytes:
        async with asyncio.timeout_at(request.deadline.loop_time()):
            return await inner(request)

    return with_deadline


def _error_layer(endpoint: Endpoint, inner: Handler) -> Handler:
    async def with_errors(request: Request) -> bytes:
        try:
            return await inner(request)
        except SwitchboardError as exc:
            info = ErrorInfo(exc.code.value, str(exc))
            if exc.code is ErrorCode.INTERNAL:
                log.exception("handler failed", endpoint=endpoint.name)
            else:
                log.info(
                    "handler answered with an error",
                    endpoint=endpoint.name,
                    code=exc.code.value,
                    error=str(exc),
                )
        except TimeoutError:
            info = ErrorInfo(
                ErrorCode.TIMEOUT,
                f"The {endpoint.name} worker did not finish before the request's deadline.",
            )
            log.info("handler timed out", endpoint=endpoint.name)
        except Exception:
            info = ErrorInfo(
                ErrorCode.INTERNAL,
                f"The {endpoint.name} worker failed with an internal error "
                f"(correlation id {request.correlation_id}); its logs have the details.",
            )
            log.exception("handler crashed", endpoint=endpoint.name)
        request.error = info
        return endpoint._error_payload(request, info)

    return with_errors


def _context_layer(endpoint: Endpoint, inner: Handler) -> Handler:
    bind = structlog.contextvars.bind_contextvars

    async def with_context(request: Request) -> bytes:
        # Each request runs in its own task, whose context is a copy: binding needs no reset
        # (cheaper than bound_contextvars on the hot path) and never leaks to other requests.
        bind(correlation_id=request.correlation_id, endpoint=endpoint.name)
        return await inner(request)

    return with_context
