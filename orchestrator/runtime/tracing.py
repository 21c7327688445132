"""Turning tracing on for a process: the OpenTelemetry SDK, an OTLP/HTTP exporter, log ids.

Opt-in at run time: a process traces only when an OTLP endpoint is configured --
``SWITCHBOARD_OTLP_ENDPOINT`` (the collector's base URL, e.g.
``http://otel-collector:4318``; spans go to ``<url>/v1/traces``) or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (with the other
``OTEL_EXPORTER_OTLP_*`` variables: headers, timeout, compression; and
``OTEL_TRACES_SAMPLER``, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, read by the
SDK). ``OTEL_TRACES_EXPORTER`` turns it on too: ``otlp`` (the default endpoint,
``http://localhost:4318``), ``console`` (spans on stdout), or ``none`` -- spans are made,
batched and propagated but dropped instead of sent: what ``switchboard bench engine
--tracing`` measures. Without any of these, nothing here runs and the core's flag stays off (see
:mod:`switchboard.orchestrator.core.tracing`).

Spans leave in batches (``BatchSpanProcessor``, its own thread: never on the event loop);
:func:`shutdown_tracing` flushes what is left when the process stops.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ..core import tracing
from .settings import Settings

if TYPE_CHECKING:  # the SDK is imported when tracing is turned on, not before
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "OTEL_ENDPOINT_VARIABLES",
    "add_trace_ids",
    "configure_tracing",
    "shutdown_tracing",
    "tracing_wanted",
]

#: The standard variables that, set, turn tracing on as SWITCHBOARD_OTLP_ENDPOINT does.
OTEL_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_provider: TracerProvider | None = None


def tracing_wanted(settings: Settings, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process should trace (an OTLP endpoint or an exporter is configured)."""
    env = os.environ if environ is None else environ
    return (
        bool(settings.otlp_endpoint)
        or any(env.get(name) for name in OTEL_ENDPOINT_VARIABLES)
        or bool(_exporter_name(env))
    )


def _exporter_name(env: Mapping[str, str]) -> str:
    return env.get("OTEL_TRACES_EXPORTER", "").strip().lower()


def configure_tracing(
    settings: Settings,
    *,
    service: str,
    instance: str | None = None,
    exporter: SpanExporter | None = None,
) -> bool:
    """Set up the SDK and turn the core's tracing on, when an endpoint is configured (or an
    ``exporter`` is given: tests and the bench pass the SDK's in-memory one, which gets
    each span as it ends). Returns whether tracing is on. Idempotent.

    ``service`` is ``service.name`` unless ``OTEL_SERVICE_NAME`` says otherwise.
    """
    global _provider
    if _provider is not None:
        return True
    if exporter is None and not tracing_wanted(settings):
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    attributes: dict[str, Any] = {}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = service
    if instance is not None:
        attributes[SERVICE_INSTANCE_ID] = instance
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(settings)))
    trace.set_tracer_provider(provider)
    _provider = provider
    tracing.enable()
    return True


def _otlp_exporter(settings: Settings) -> SpanExporter:
    name = _exporter_name(os.environ)
    if name == "none" and not settings.otlp_endpoint:
        return _dropping_exporter()
    if name == "console" and not settings.otlp_endpoint:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if settings.otlp_endpoint:
        return OTLPSpanExporter(endpoint=settings.otlp_endpoint.rstrip("/") + "/v1/traces")
    return OTLPSpanExporter()  # reads the OTEL_EXPORTER_OTLP_* variables itself


def _dropping_exporter() -> SpanExporter:
    """An exporter that drops every batch (``OTEL_TRACES_EXPORTER=none``)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Dropped(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    return Dropped()


def shutdown_tracing() -> None:
    """Export the spans still buffered and turn tracing off (idempotent; blocks up to the
    exporter's timeout: call it once the event loop's work is done)."""
    global _provider
    provider, _provider = _provider, None
    tracing.disable()
    if provider is not None:
        provider.shutdown()


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` on lines logged inside a span."""
    ids = tracing.current_ids()
    if ids is not None:
        event_dict.setdefault("trace_id", ids[0])
        event_dict.setdefault("span_id", ids[1])
    return event_dict
