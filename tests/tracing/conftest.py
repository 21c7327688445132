"""The tracing tests' spans: the SDK's in-memory exporter, on for one test at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from switchboard.orchestrator.core import tracing

_EXPORTER = InMemorySpanExporter()
_PROVIDER: TracerProvider | None = None


@pytest.fixture
def memory_spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process for the test, every span ending in the returned exporter.

    The global provider can be set once per process: the first test that asks sets it.
    """
    global _PROVIDER
    if _PROVIDER is None:
        _PROVIDER = TracerProvider(resource=Resource.create({"service.name": "test"}))
        _PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(_PROVIDER)
    _EXPORTER.clear()
    tracing.enable()
    try:
        yield _EXPORTER
    finally:
        tracing.disable()
        _EXPORTER.clear()
