"""Tracing at the HTTP edge: each request a server span, an incoming ``traceparent`` honoured.

When the process traces (``SWITCHBOARD_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_*``, see
:mod:`switchboard.orchestrator.runtime.tracing`), :func:`traced` wraps the whole ASGI app
in OpenTelemetry's ASGI middleware: a caller's W3C ``traceparent`` makes the request part
of the caller's trace, otherwise the request starts one. Everything the request sends to
the orchestrator is a child of that span (the requester injects ``traceparent`` into the
NATS headers), so one conversation is one trace from the browser to the agents. The
correlation id is an attribute of the span (:func:`tag_correlation_id`).

Off, neither is called: the app is what it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from switchboard.orchestrator.core import tracing

__all__ = ["tag_correlation_id", "traced"]

ASGIApp = Callable[..., Awaitable[None]]


def traced(app: ASGIApp) -> ASGIApp:
    """``app`` inside an HTTP server span per request (OpenTelemetry's ASGI middleware)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    # Without per-message "receive"/"send" spans: an SSE stream would make hundreds.
    middleware: Any = OpenTelemetryMiddleware(app, exclude_spans=["receive", "send"])
    return middleware  # type: ignore[no-any-return]


def tag_correlation_id(correlation_id: str) -> None:
    """Name the conversation on the request's span (when tracing is on)."""
    if not tracing.ENABLED:
        return
    from opentelemetry import trace

    trace.get_current_span().set_attribute(tracing.CONVERSATION_ID, correlation_id)
