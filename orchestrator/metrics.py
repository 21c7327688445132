"""The metrics catalog: the service's metrics (engine, LLM, HTTP), and every metric in one table.

The core's own metrics (correlation, endpoints, NATS) live in
``orchestrator.core.metrics``; :func:`catalog` lists both, in order, and the
README's table is written from it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .core import metrics as core_metrics
from .core.metrics import LATENCY_BUCKETS, LiveGauge, LoopHistogram

__all__ = [
    "CLAIMS",
    "CONVERSATIONS",
    "CONVERSATION_DURATION",
    "HISTORY_FAILURES",
    "HTTP_DURATION",
    "HTTP_IN_FLIGHT",
    "HTTP_REJECTED",
    "HTTP_REQUESTS",
    "LLM_DURATION",
    "LLM_FIRST_TOKEN",
    "LLM_REQUESTS",
    "LLM_TOKENS",
    "PLAN_FALLBACKS",
    "PLAN_STEPS",
    "STEPS",
    "STEP_RETRIES",
    "catalog",
    "metrics_table",
]

# -- engine ----------------------------------------------------------------------------------

CONVERSATIONS = Counter(
    "switchboard_conversations_total",
    "Conversations answered by the orchestrator, by outcome (ok, partial, error code).",
    ["outcome"],
)
CONVERSATION_DURATION = Histogram(
    "switchboard_conversation_duration_seconds",
    "Time from a conversation request reaching the orchestrator to its answer.",
    buckets=LATENCY_BUCKETS,
)
PLAN_STEPS = Histogram(
    "switchboard_plan_steps",
    "Number of steps in the plans made, by source (llm, local, fallback).",
    ["source"],
    buckets=(1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 256),
)
PLAN_FALLBACKS = Counter(
    "switchboard_plan_fallbacks_total",
    "LLM plans that were unusable and replaced by the local planner, by reason.",
    ["reason"],
)
STEPS = Counter(
    "switchboard_steps_total",
    "Plan steps finished, by agent and outcome (ok, failed, skipped).",
    ["agent", "outcome"],
)
HISTORY_FAILURES = Counter(
    "switchboard_history_failures_total",
    "Conversation memory loads or saves that failed or ran out of time (the answer went on).",
    ["operation"],
)
CLAIMS = Counter(
    "switchboard_claims_total",
    "Conversation requests with a request id, by what their JetStream claim did: claimed "
    "(this replica ran it), replayed (another replica's stored reply), orphaned (the "
    "claimer gave no reply by the deadline), taken_over (its claimer stopped renewing: run "
    "here), let_go (this replica stalled past the lapse and let its claim go), unclaimed "
    "(JetStream failed: run anyway), too_large_to_store (answered; the reply was too large "
    "to keep for a retry, which would run it again).",
    ["outcome"],
)
STEP_RETRIES = Counter(
    "switchboard_step_retries_total",
    "Step attempts retried after a transient error (no_responders, overloaded, shutting_down, "
    "not accepted in time).",
    ["agent"],
)

# -- LLM -------------------------------------------------------------------------------------

LLM_REQUESTS = Counter(
    "switchboard_llm_requests_total",
    "Calls to a language model, by provider, model and outcome (ok or an error kind).",
    ["provider", "model", "outcome"],
)
LLM_DURATION = Histogram(
    "switchboard_llm_request_duration_seconds",
    "Duration of language model calls (including the client's own retries).",
    ["provider", "model"],
    buckets=LATENCY_BUCKETS,
)
LLM_TOKENS = Counter(
    "switchboard_llm_tokens_total",
    "Tokens used by language model calls, by kind (prompt, completion).",
    ["provider", "model", "kind"],
)

LLM_FIRST_TOKEN = Histogram(
    "switchboard_llm_time_to_first_token_seconds",
    "Time from a streamed language model call's start to its first text chunk.",
    ["provider", "model"],
    buckets=LATENCY_BUCKETS,
)

# -- HTTP (BFF) ------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "switchboard_http_requests_total",
    "HTTP requests served by the BFF, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "switchboard_http_request_duration_seconds",
    "Duration of HTTP requests served by the BFF (streams: until the stream ends).",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = LiveGauge(
    "switchboard_http_in_flight",
    "Chat requests the BFF is working on right now.",
)
HTTP_REJECTED = Counter(
    "switchboard_http_rejected_total",
    "HTTP requests refused by backpressure or auth, by reason (user_limit, instance_limit, "
    "unauthorized, auth_rate_limit).",
    ["reason"],
)


def catalog() -> list[tuple[str, str, tuple[str, ...], str]]:
    """(name, type, labels, meaning) of every metric in this module, in order."""
    rows = []
    for value in [*vars(core_metrics).values(), *list(globals().values())]:
        if isinstance(value, LiveGauge):
            rows.append((value.name, "gauge", value.labelnames, value.documentation))
        elif isinstance(value, LoopHistogram):
            rows.append((value.name, "histogram", value.labelnames, value.documentation))
        elif isinstance(value, Counter | Gauge | Histogram):
            kind = {Counter: "counter", Gauge: "gauge", Histogram: "histogram"}[type(value)]
            name = value._name + ("_total" if kind == "counter" else "")
            rows.append((name, kind, tuple(value._labelnames), value._documentation))
    return rows


def metrics_table() -> str:
    """The Markdown table of every metric (the README embeds it)."""
    lines = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for name, kind, labels, meaning in catalog():
        shown = ", ".join(labels) if labels else "-"
        lines.append(f"| `{name}` | {kind} | {shown} | {meaning} |")
    return "\n".join(lines)
