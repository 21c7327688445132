"""Tracing's wiring: LLM call spans with token counts, opt-in settings, the deploy files."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from switchboard.orchestrator import LLMError, OpenAIProvider, Settings
from switchboard.orchestrator.core import tracing
from switchboard.orchestrator.llm.base import ChatMessage
from switchboard.orchestrator.runtime import configure_tracing, tracing_wanted
from tests.deploy.conftest import named, render
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.tracing.collect import from_sdk

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "switchboard.json"
#: The histograms observed with exemplars (a trace id per bucket).
WITH_EXEMPLARS = (
    "switchboard_http_request_duration_seconds",
    "switchboard_conversation_duration_seconds",
    "switchboard_correlation_request_duration_seconds",
    "switchboard_endpoint_duration_seconds",
    "switchboard_llm_request_duration_seconds",
)


async def test_an_llm_call_is_a_span_with_its_token_counts(
    fake_openai: FakeOpenAI, memory_spans: InMemorySpanExporter
) -> None:
    fake_openai.enqueue(Reply.text("four words of answer"), Reply.server_error())
    llm = OpenAIProvider(
        model="test-model", api_key="test-key", base_url=fake_openai.base_url, max_retries=0
    )
    try:
        with trace.get_tracer("test").start_as_current_span("asker"):
            completion = await llm.complete([ChatMessage("user", "what is two plus two")])
            try:
                await llm.complete([ChatMessage("user", "again")])
            except LLMError:
                pass
            else:
                raise AssertionError("the scripted server error did not fail the call")
    finally:
        await llm.aclose()
    assert completion.usage.completion_tokens == 4
    spans = from_sdk(memory_spans.get_finished_spans())
    asker = next(s for s in spans if s.name == "asker")
    ok, failed = sorted((s for s in spans if s.name == "chat test-model"), key=lambda s: s.start_ns)
    assert ok.parent_id == failed.parent_id == asker.span_id
    assert ok.attributes["gen_ai.system"] == "openai"
    assert ok.attributes["gen_ai.request.model"] == "test-model"
    assert ok.attributes["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens > 0
    assert ok.attributes["gen_ai.usage.output_tokens"] == 4
    assert "gen_ai.usage.output_tokens" not in failed.attributes


def test_tracing_is_opt_in() -> None:
    assert not tracing.ENABLED
    assert not tracing_wanted(Settings(), {})
    assert not configure_tracing(Settings(), service="switchboard-test")
    assert not tracing.ENABLED, "no endpoint: the process does not trace"
    assert tracing_wanted(Settings(otlp_endpoint="http://collector:4318"), {})
    assert tracing_wanted(Settings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_wanted(Settings(), {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/v1/traces"})
    assert tracing_wanted(Settings(), {"OTEL_TRACES_EXPORTER": "none"})


def test_the_dashboards_latency_panels_show_exemplars() -> None:
    quantiles = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                if "histogram_quantile" in expr and any(h in expr for h in WITH_EXEMPLARS):
                    quantiles.append(target)
            walk(panel.get("panels", []))

    walk(json.loads(DASHBOARD.read_text())["panels"])
    assert len(quantiles) >= 10
    assert [t["expr"] for t in quantiles if t.get("exemplar") is not True] == []


def test_production_sends_traces_to_a_collector_and_dev_does_not_trace() -> None:
    production = named(render("production"), "ConfigMap", "switchboard-config")["data"]
    assert production["SWITCHBOARD_OTLP_ENDPOINT"].startswith("http")
    assert production["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    dev = named(render("dev"), "ConfigMap", "switchboard-config")["data"]
    assert not any(key.startswith(("OTEL_", "SWITCHBOARD_OTLP")) for key in dev)
