"""Tracing inside one process, against a real nats-server: the span tree of a conversation,
the retry of a step, the queue wait, the cost of tracing off (no header, no span), exemplars.
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client as NATS
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

from switchboard.agents import builtin_agents
from switchboard.orchestrator import (
    ConversationClient,
    ConversationReply,
    ConversationRequest,
    OverloadedError,
    Requester,
    Settings,
    encode,
)
from switchboard.orchestrator.core import Deadline, Endpoint, Request, RequestOptions
from switchboard.orchestrator.runtime.tracing import add_trace_ids
from tests.support.system import agents_running, orchestrator_running
from tests.tracing.agents import flaky
from tests.tracing.collect import SpanRecord, children, from_sdk

CONVERSE = "ai.orchestrator.converse"


def one(spans: list[SpanRecord], **where: object) -> SpanRecord:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, [(s.name, s.parent_id) for s in spans])
    return found[0]


async def test_a_conversation_is_one_trace_with_steps_retries_and_hops(
    settings: Settings, requester: Requester, memory_spans: InMemorySpanExporter
) -> None:
    calculator = builtin_agents()["calculator"]
    async with (
        agents_running(settings, calculator, flaky),
        orchestrator_running(settings),
    ):
        client = ConversationClient(requester)
        with trace.get_tracer("test").start_as_current_span("caller") as caller:
            reply = await client.ask(
                "what is 17*23 and what is the spelling of necessary",
                user_id="tracer",
                agents=["calculator", "flaky"],  # waits until discovery knows both
            )
        trace_id = f"{caller.get_span_context().trace_id:032x}"
    assert not reply.partial, reply
    assert {s.agent for s in reply.steps} == {"calculator", "flaky"}
    spans = from_sdk(memory_spans.get_finished_spans())
    assert {s.trace_id for s in spans} == {trace_id}, "one conversation, one trace"
    root = one(spans, name="caller")
    sent = one(spans, name=f"send {CONVERSE}", parent_id=root.span_id)
    assert sent.kind == "CLIENT"
    assert sent.attributes["messaging.system"] == "nats"
    assert sent.attributes["messaging.destination.name"] == CONVERSE
    assert sent.attributes["messaging.message.conversation_id"] == reply.correlation_id
    served = one(spans, name=f"process {CONVERSE}", parent_id=sent.span_id)
    assert served.kind == "SERVER"
    assert served.attributes["messaging.operation.type"] == "process"
    assert served.attributes["messaging.message.conversation_id"] == reply.correlation_id
    one(spans, name="queue", parent_id=served.span_id)  # the wait before the work started
    steps = [s for s in children(spans, served) if s.name == "step"]
    assert {s.attributes["switchboard.agent"] for s in steps} == {"calculator", "flaky"}
    by_agent = {s.attributes["switchboard.agent"]: s for s in steps}
    # The two steps ran side by side (parallel), both children of the conversation's span.
    calc, flak = by_agent["calculator"], by_agent["flaky"]
    assert calc.start_ns < flak.end_ns and flak.start_ns < calc.end_ns

    # The calculator: one request, served once, by the agent, under that request.
    (calc_sent,) = children(spans, calc)
    assert calc_sent.name == "send ai.agents.calculator"
    one(spans, name="process ai.agents.calculator", parent_id=calc_sent.span_id)

    # The flaky agent: a refused first attempt, then a retry span around the second.
    first, retry = sorted(children(spans, flak), key=lambda s: s.start_ns)
    assert first.name == "send ai.agents.flaky"
    assert first.attributes["switchboard.error"] == "overloaded"
    assert retry.name == "retry" and retry.attributes["switchboard.attempt"] == 2
    (second,) = children(spans, retry)
    assert second.name == "send ai.agents.flaky" and "switchboard.error" not in second.attributes
    one(spans, name="process ai.agents.flaky", parent_id=first.span_id)
    one(spans, name="process ai.agents.flaky", parent_id=second.span_id)

    # Exemplars: the latency histograms name this trace in the OpenMetrics exposition.
    exposition = openmetrics(REGISTRY).decode()
    linked = [
        line
        for line in exposition.splitlines()
        if line.startswith(
            (
                "switchboard_correlation_request_duration_seconds_bucket",
                "switchboard_endpoint_duration_seconds_bucket",
                "switchboard_conversation_duration_seconds_bucket",
            )
        )
        and f'trace_id="{trace_id}"' in line
    ]
    names = {line.split("_bucket")[0] for line in linked}
    assert names == {
        "switchboard_correlation_request_duration_seconds",
        "switchboard_endpoint_duration_seconds",
        "switchboard_conversation_duration_seconds",
    }, linked


async def test_the_queue_wait_is_its_own_span(
    requester: Requester, nats_client: NATS, memory_spans: InMemorySpanExporter
) -> None:
    """A request that waits for a free slot (max_concurrency 1) shows the wait as ``queue``."""

    async def slow(request: Request) -> bytes:
        await asyncio.sleep(0.3)
        return b"done"

    endpoint = Endpoint(
        nats_client, subject="test.slow", handler=slow, max_concurrency=1, heartbeat_tick=0.05
    )
    await endpoint.start()
    try:

        async def ask() -> bytes:
            msg = await requester.request(
                "test.slow",
                b"",
                correlation_id="conv-tracer-q",
                deadline=Deadline.after(10),
                options=RequestOptions(heartbeat=0.1, silence_timeout=5.0),
            )
            return bytes(msg.data)

        results = await asyncio.gather(ask(), ask())
    finally:
        await endpoint.stop()
    assert results == [b"done", b"done"]
    spans = from_sdk(memory_spans.get_finished_spans())
    queues = [s for s in spans if s.name == "queue"]
    assert len(queues) == 2
    waited = max(q.end_ns - q.start_ns for q in queues)
    assert waited >= 200_000_000, "the second request waited for the first one's slot"
    served = [s for s in spans if s.name == "process test.slow"]
    assert max(s.attributes["switchboard.queue_wait_ms"] for s in served) >= 200
    # accepted / heartbeat: events on both sides (the worker sent them, the requester got them).
    assert all({"accepted sent", "heartbeat sent"} <= set(s.events) for s in served), served
    sent = [s for s in spans if s.name == "send test.slow"]
    assert all("accepted" in s.events for s in sent), sent


async def test_off_no_header_no_span(
    settings: Settings, requester: Requester, nats_client: NATS
) -> None:
    """Tracing off (the default): messages carry no traceparent and nothing is recorded."""
    seen: list[dict[str, str]] = []

    async def record(msg: object) -> None:
        seen.append(dict(getattr(msg, "headers", None) or {}))

    sub = await nats_client.subscribe("ai.agents.calculator", cb=record)
    await nats_client.flush()
    calculator = builtin_agents()["calculator"]
    async with agents_running(settings, calculator), orchestrator_running(settings):
        reply = await ConversationClient(requester).ask(
            "what is 2+2", user_id="tracer", agents=["calculator"]
        )
    await sub.unsubscribe()
    assert reply.answer
    assert seen, "the step's request was not seen"
    assert all("traceparent" not in headers for headers in seen)
    assert trace.get_current_span().get_span_context().is_valid is False


async def test_log_lines_carry_the_trace_and_span_ids(
    memory_spans: InMemorySpanExporter,
) -> None:
    with trace.get_tracer("test").start_as_current_span("logged") as span:
        event = add_trace_ids(None, "info", {"event": "x"})
    context = span.get_span_context()
    assert event["trace_id"] == f"{context.trace_id:032x}"
    assert event["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in add_trace_ids(None, "info", {"event": "outside"})


async def test_a_retry_of_the_conversation_client_is_a_retry_span(
    requester: Requester, nats_client: NATS, memory_spans: InMemorySpanExporter
) -> None:
    """The client asks again after a refusal (overloaded): the second attempt is a ``retry``."""
    calls = 0

    async def converse(request: Request) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OverloadedError("Busy; try again.")
        asked = request.decode(ConversationRequest)
        return encode(ConversationReply(correlation_id=asked.correlation_id, answer="ok"))

    endpoint = Endpoint(nats_client, subject=CONVERSE, handler=converse)
    await endpoint.start()
    try:
        with trace.get_tracer("test").start_as_current_span("caller"):
            reply = await ConversationClient(requester).ask("hello", user_id="tracer")
    finally:
        await endpoint.stop()
    assert (reply.answer, calls) == ("ok", 2)
    spans = from_sdk(memory_spans.get_finished_spans())
    caller = one(spans, name="caller")
    first = one(spans, name=f"send {CONVERSE}", parent_id=caller.span_id)
    assert first.attributes["switchboard.error"] == "overloaded"
    retry = one(spans, name="retry", parent_id=caller.span_id)
    assert retry.attributes["switchboard.attempt"] == 2
    second = one(spans, name=f"send {CONVERSE}", parent_id=retry.span_id)
    assert "switchboard.error" not in second.attributes


async def test_an_unsampled_trace_gets_no_exemplar(
    requester: Requester, nats_client: NATS, memory_spans: InMemorySpanExporter
) -> None:
    """A caller that decided not to record its trace: the hops follow, and no histogram
    bucket names a trace that was never recorded."""
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    async def echo(request: Request) -> bytes:
        return request.data

    endpoint = Endpoint(nats_client, subject="test.unsampled", handler=echo)
    await endpoint.start()
    unsampled = SpanContext(
        trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=TraceFlags(0)
    )
    try:
        with trace.use_span(NonRecordingSpan(unsampled)):
            msg = await requester.request(
                "test.unsampled", b"hi", correlation_id="conv-tracer-u", deadline=Deadline.after(5)
            )
    finally:
        await endpoint.stop()
    assert msg.data == b"hi"
    assert memory_spans.get_finished_spans() == ()  # nothing recorded
    exposition = openmetrics(REGISTRY).decode()
    assert f'trace_id="{0x1234:032x}"' not in exposition


async def test_a_nested_agent_call_is_a_child_of_the_callers_work(
    settings: Settings, requester: Requester, memory_spans: InMemorySpanExporter
) -> None:
    """What an agent sends while it works (``ctx.call`` goes through its process's Requester)
    is a ``send`` span under that agent's ``process`` span, and the callee's under it."""
    from switchboard.agents import TaskContext, agent
    from switchboard.orchestrator import AgentResult, AgentTask

    @agent("caller", "Asks the calculator.", keywords=("caller",))
    async def caller(task: AgentTask, ctx: TaskContext) -> object:
        nested = await requester.call(
            "ai.agents.calculator",
            AgentTask(
                correlation_id=task.correlation_id,
                task_id=f"{task.task_id}-1",
                agent="calculator",
                instruction="6*7",
            ),
            AgentResult,
            correlation_id=task.correlation_id,
            deadline=Deadline.after(5),
        )
        return nested.output

    async with agents_running(settings, builtin_agents()["calculator"], caller):
        result = await requester.call(
            "ai.agents.caller",
            AgentTask(
                correlation_id="conv-tracer-n", task_id="s1", agent="caller", instruction="go"
            ),
            AgentResult,
            correlation_id="conv-tracer-n",
            deadline=Deadline.after(5),
        )
    assert result.ok, result
    spans = from_sdk(memory_spans.get_finished_spans())
    outer = one(spans, name="process ai.agents.caller")
    nested = one(spans, name="send ai.agents.calculator", parent_id=outer.span_id)
    one(spans, name="process ai.agents.calculator", parent_id=nested.span_id)
    assert len({s.trace_id for s in spans}) == 1
