"""One ``/v1/chat`` is one trace across processes: BFF, orchestrator and agents.

``switchboard up`` runs each part as a process of its own, all exporting over OTLP/HTTP to a
receiver in this test (``SWITCHBOARD_OTLP_ENDPOINT``); this process is the HTTP client, a
span of its own (the SDK's in-memory exporter) whose ``traceparent`` the BFF honours. The
plan has two parallel steps, one of them refused once (``tests.tracing.agents:flaky``) and
retried; the orchestrator plans and answers with a language model (the scripted
OpenAI-compatible server of ``tests/support/fake_openai.py``). Every span must be in the one
trace, each under the right parent.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.up import start_up
from tests.tracing.collect import OtlpReceiver, SpanRecord, children, from_sdk


def one(spans: list[SpanRecord], **where: object) -> SpanRecord:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, sorted((s.service, s.name) for s in spans))
    return found[0]


async def test_one_chat_is_one_trace_across_bff_orchestrator_and_agents(
    memory_spans: InMemorySpanExporter, fake_openai: FakeOpenAI
) -> None:
    plan = {
        "steps": [
            {"id": "s1", "agent": "calculator", "instruction": "17*23"},
            {"id": "s2", "agent": "flaky", "instruction": "the spelling of necessary"},
        ]
    }
    fake_openai.enqueue(Reply.structured(plan), Reply.text("391, and it is spelt necessary."))
    with OtlpReceiver() as receiver:
        up = await asyncio.to_thread(
            start_up,
            "--agents",
            "calculator,tests.tracing.agents:flaky",
            env={
                "SWITCHBOARD_OTLP_ENDPOINT": receiver.url,
                "OPENAI_API_KEY": "test-key",
                "OPENAI_BASE_URL": fake_openai.base_url,
            },
        )
        try:
            with trace.get_tracer("test").start_as_current_span("browser") as browser:
                carrier: dict[str, str] = {}
                propagate.inject(carrier)  # the W3C traceparent header of this span
                async with httpx.AsyncClient(timeout=30) as http:
                    response = await http.post(
                        f"{up.url}/v1/chat",
                        json={
                            # A clause with no step: the model reads the results.
                            "message": "what is 17*23 and what is the spelling of necessary, "
                            "and tell me which was harder",
                            "agents": ["calculator", "flaky"],
                        },
                        headers=carrier,
                    )
            assert response.status_code == 200, response.text
        finally:
            # Each part flushes its spans as it stops.
            assert await asyncio.to_thread(up.stop) == 0
        received = receiver.snapshot()
        logs = up.logs()
    body = response.json()
    trace_id = f"{browser.get_span_context().trace_id:032x}"
    spans = from_sdk(memory_spans.get_finished_spans()) + [
        s for s in received if s.trace_id == trace_id
    ]
    services = {s.service for s in spans}
    assert {"switchboard-bff", "switchboard-orchestrator", "switchboard-agent"} <= services
    # Nothing of this conversation went to another trace.
    cid = body["correlation_id"]
    strays = [
        s
        for s in received
        if s.trace_id != trace_id and s.attributes.get("messaging.message.conversation_id") == cid
    ]
    assert not strays, strays

    root = one(spans, name="browser")
    http = one(spans, service="switchboard-bff", kind="SERVER", parent_id=root.span_id)
    assert http.attributes.get("messaging.message.conversation_id") == cid
    asked = one(spans, service="switchboard-bff", name="send ai.orchestrator.converse")
    assert asked.parent_id == http.span_id
    served = one(spans, service="switchboard-orchestrator", name="process ai.orchestrator.converse")
    assert served.parent_id == asked.span_id
    assert served.attributes["messaging.message.conversation_id"] == cid
    steps = {
        s.attributes["switchboard.agent"]: s for s in children(spans, served) if s.name == "step"
    }
    assert set(steps) == {"calculator", "flaky"}
    calc, flaky = steps["calculator"], steps["flaky"]
    assert calc.start_ns < flaky.end_ns and flaky.start_ns < calc.end_ns, "parallel steps"
    planned = one(spans, service="switchboard-orchestrator", parent_id=served.span_id, name="plan")
    one(spans, service="switchboard-orchestrator", parent_id=served.span_id, name="aggregate")
    # The model read the steps' results (as tool results) and answered: that answer is the
    # draft the aggregator gives back, with no second call.
    read = one(
        spans, service="switchboard-orchestrator", parent_id=served.span_id, name="tool round"
    )
    # Each LLM call is a span under what it was for, with its token counts.
    for purpose in (planned, read):
        call = one(spans, name="chat gpt-4o-mini", parent_id=purpose.span_id)
        assert call.attributes["gen_ai.usage.input_tokens"] > 0
        assert call.attributes["gen_ai.usage.output_tokens"] > 0
    # Both outputs are deterministic: they are the answer, not the model's draft.
    assert body["answer"].startswith("- 17 * 23 = 391\n")
    # Log lines written inside a span name it: the orchestrator's "step retried" line.
    retried = [line for line in logs.splitlines() if "step retried" in line]
    assert retried and all(f'"trace_id": "{trace_id}"' in line for line in retried), retried
    assert f'"span_id": "{flaky.span_id}"' in retried[0]

    (calc_sent,) = children(spans, calc)
    calc_served = one(spans, service="switchboard-agent", parent_id=calc_sent.span_id)
    assert calc_served.name == "process ai.agents.calculator"

    first, retry = sorted(children(spans, flaky), key=lambda s: s.start_ns)
    assert first.name == "send ai.agents.flaky"
    assert first.attributes["switchboard.error"] == "overloaded"
    assert retry.name == "retry" and retry.attributes["switchboard.attempt"] == 2
    (second,) = children(spans, retry)
    refused = one(spans, service="switchboard-agent", parent_id=first.span_id)
    answered = one(spans, service="switchboard-agent", parent_id=second.span_id)
    assert refused.name == answered.name == "process ai.agents.flaky"
    assert refused.attributes.get("error.type") == "overloaded"
    assert "error.type" not in answered.attributes
    # The agent's server spans start at arrival and have the queue wait as a child.
    for span in (calc_served, refused, answered):
        one(spans, name="queue", parent_id=span.span_id)
    assert [b["status"] for b in body["steps"]] == ["ok", "ok"]
    assert time.time_ns() > served.end_ns > served.start_ns
