"""OpenTelemetry tracing of every hop: W3C ``traceparent`` on NATS messages, spans around them.

Off by default, and then free: every instrumented place checks the module-level
:data:`ENABLED` flag first (one attribute load) and creates no span object, builds no
context and adds no header. A process turns it on with :func:`enable` once its
``TracerProvider`` is set (``runtime.tracing.configure_tracing`` does both, when an OTLP
endpoint is configured; tests and the bench use the SDK's in-memory exporter).

On, the shapes are the OpenTelemetry messaging conventions, with ``messaging.system``
``nats``:

* a **client span** per request (:func:`start_client`), from publish to the final reply
  (or the timeout, the cancellation), with an ``accepted`` event when a worker took it;
  its context travels in the ``traceparent`` header (the official W3C propagator, so a
  ``tracestate`` or ``baggage`` goes with it);
* a **server span** per request a worker runs (:func:`start_server`), child of the
  sender's span, from the moment the message was read (queue wait included) to the
  final reply, with a child ``queue`` span for the wait before the work started and
  ``accepted`` / ``heartbeat`` events as they are sent;
* internal spans (:func:`span`) for the plan, each step, each retry, each LLM call.

The correlation id is the ``messaging.message.conversation_id`` attribute of every one.
Only this module (and ``runtime.tracing``) imports OpenTelemetry, and only once tracing
is on.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

if TYPE_CHECKING:  # imported when first used: a process that does not trace never loads it
    from opentelemetry.trace import Span, SpanContext, Tracer

__all__ = [
    "CONVERSATION_ID",
    "ENABLED",
    "current_ids",
    "disable",
    "enable",
    "end_span",
    "exemplar",
    "inject",
    "retry_span",
    "span",
    "span_exemplar",
    "start_client",
    "start_server",
    "traced",
    "traced_sync",
    "tracer",
    "use_span",
]

#: Whether this process traces. Read it as ``tracing.ENABLED`` (never ``from ... import``):
#: the hot path checks it before doing anything else.
ENABLED = False

#: The attribute the correlation id goes in (the messaging conventions' conversation id).
CONVERSATION_ID: Final = "messaging.message.conversation_id"
_SYSTEM: Final = "messaging.system"
_DESTINATION: Final = "messaging.destination.name"
_OPERATION: Final = "messaging.operation.name"
_OPERATION_TYPE: Final = "messaging.operation.type"

_NAME = "switchboard"

P = ParamSpec("P")
R = TypeVar("R")

_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


_tracer: Tracer | None = None


def enable(on: bool = True) -> None:
    """Turn tracing on (or off) for this process; set the tracer provider first."""
    global ENABLED, _tracer
    _tracer = None  # the provider may have changed: ask it again
    ENABLED = on


def disable() -> None:
    enable(False)


def tracer() -> Tracer:
    """The project's tracer (from the global provider: a no-op one until one is set)."""
    global _tracer
    if _tracer is None:
        from opentelemetry import trace

        _tracer = trace.get_tracer(_NAME)
    return _tracer


def start_client(
    subject: str, correlation_id: str | None, headers: MutableMapping[str, str]
) -> Span:
    """A client span for a request about to go to ``subject``; its context goes in ``headers``.

    The caller ends it with :func:`end_span` when the request ends.
    """
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind

    attributes: dict[str, Any] = {
        _SYSTEM: "nats",
        _DESTINATION: subject,
        _OPERATION: "send",
        _OPERATION_TYPE: "send",
    }
    if correlation_id is not None:
        attributes[CONVERSATION_ID] = correlation_id
    sent = tracer().start_span(f"send {subject}", kind=SpanKind.CLIENT, attributes=attributes)
    propagate.inject(headers, context=trace.set_span_in_context(sent))
    return sent


def inject(headers: MutableMapping[str, str]) -> None:
    """Put the current trace context in ``headers`` (a message that is no request)."""
    from opentelemetry import propagate

    propagate.inject(headers)


def start_server(
    subject: str,
    correlation_id: str | None,
    headers: Mapping[str, str],
    *,
    endpoint: str,
    arrived_ns: int | None,
    started_ns: int,
) -> Span:
    """The server span of a request that starts running now, child of its sender's span.

    It starts when the message was read (``arrived_ns``), and a child ``queue`` span covers
    the wait until the work started (``started_ns``). Make it current for the handler with
    :func:`use_span`; end it with :func:`end_span`.
    """
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind

    parent = propagate.extract(headers)
    attributes: dict[str, Any] = {
        _SYSTEM: "nats",
        _DESTINATION: subject,
        _OPERATION: "process",
        _OPERATION_TYPE: "process",
        "switchboard.endpoint": endpoint,
    }
    if correlation_id is not None:
        attributes[CONVERSATION_ID] = correlation_id
    begun = arrived_ns if arrived_ns is not None else started_ns
    served = tracer().start_span(
        f"process {subject}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes=attributes,
        start_time=begun,
    )
    queued = tracer().start_span(
        "queue",
        context=trace.set_span_in_context(served),
        attributes={"switchboard.endpoint": endpoint},
        start_time=begun,
    )
    queued.end(end_time=started_ns)
    served.set_attribute("switchboard.queue_wait_ms", (started_ns - begun) / 1e6)
    return served


def use_span(served: Span) -> contextlib.AbstractContextManager[Span]:
    """``served`` as the current span inside a block (not ended on the way out)."""
    from opentelemetry import trace

    return trace.use_span(served, end_on_exit=False)


def end_span(sent: Span, error: str | None = None) -> None:
    """End ``sent``; ``error`` (a code from the vocabulary) marks it failed."""
    from opentelemetry.trace import Status, StatusCode

    if error is not None:
        sent.set_attribute("error.type", error)
        sent.set_status(Status(StatusCode.ERROR, error))
    sent.end()


@contextlib.contextmanager
def span(name: str, correlation_id: str | None = None, **attributes: Any) -> Iterator[Span | None]:
    """An internal span around a block, current inside it; None (and nothing) when off.

    An exception out of the block is recorded on the span and re-raised.
    """
    if not ENABLED:
        yield None
        return
    if correlation_id is not None:
        attributes[CONVERSATION_ID] = correlation_id
    with tracer().start_as_current_span(name, attributes=attributes) as current:
        yield current


def traced(
    name: str, attributes: Callable[..., Mapping[str, Any]] | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate a coroutine function: each call an internal span ``name`` (when on).

    ``attributes(*args, **kwargs)`` -- the call's own arguments -- names what the call
    is about (a step id, an agent). Off, the call costs one flag check more (the wrapper
    hands back the function's own coroutine).
    """

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        async def in_span(extra: Mapping[str, Any], call: Awaitable[R]) -> R:
            with tracer().start_as_current_span(name, attributes=extra):
                return await call

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
            if not ENABLED:
                return fn(*args, **kwargs)  # the coroutine itself: not even a frame more
            extra = dict(attributes(*args, **kwargs)) if attributes is not None else {}
            return in_span(extra, fn(*args, **kwargs))

        return call

    return decorate


def traced_sync(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """:func:`traced` for a plain function."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            if not ENABLED:
                return fn(*args, **kwargs)
            with tracer().start_as_current_span(name):
                return fn(*args, **kwargs)

        return call

    return decorate


def retry_span(attempt: int, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    """A ``retry`` span around attempt number ``attempt`` of something, from the second on
    (the first attempt is no retry); off, a shared no-op context."""
    if attempt < 2 or not ENABLED:
        return _NO_SPAN
    attributes["switchboard.attempt"] = attempt
    return tracer().start_as_current_span("retry", attributes=attributes)


def exemplar() -> dict[str, str] | None:
    """The exemplar labels of the current span (``trace_id``, ``span_id``), or None.

    For ``histogram.observe(value, exemplar=...)``: the OpenMetrics exposition then links
    a bucket to a trace.
    """
    if not ENABLED:
        return None
    from opentelemetry import trace

    return span_exemplar(trace.get_current_span().get_span_context())


def span_exemplar(context: SpanContext) -> dict[str, str] | None:
    """The exemplar labels of a span's context; None for a trace that is not recorded
    (not sampled): an exemplar must lead to a trace that exists."""
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    from opentelemetry import trace

    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids (hex), for log lines; None without an active span."""
    if not ENABLED:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)
