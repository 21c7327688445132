"""The wire messages (JSON, msgspec Structs): the contract between the parts.

Schema evolution rules (msgspec ``docs/schema-evolution.rst``): a new field
always gets a default, unknown fields are ignored on decode, and no field is
ever renamed or re-typed. So an old orchestrator and a new agent (or the
reverse) keep talking during a rolling upgrade.

Identifiers that end up in NATS subjects (correlation ids, user ids, agent
names, step ids) are restricted to subject-safe tokens: ASCII letters,
digits, ``_`` and ``-`` (no ``.``, ``*``, ``>`` or white space).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct, field

__all__ = [
    "AgentName",
    "AgentResult",
    "AgentTask",
    "ConversationReply",
    "ConversationRequest",
    "ConversationTurn",
    "CorrelationId",
    "ErrorInfo",
    "ErrorReply",
    "EventKind",
    "HistoryReply",
    "HistoryRequest",
    "Plan",
    "PlanStep",
    "ProgressEvent",
    "StepId",
    "StepResult",
    "StepStatus",
    "Usage",
    "UserId",
]

TOKEN_PATTERN = r"^[A-Za-z0-9_-]+$"

#: ``conv-{userID}-{uuid4}`` from the BFF; any subject-safe token from other callers.
CorrelationId = Annotated[str, Meta(pattern=TOKEN_PATTERN, min_length=1, max_length=200)]
UserId = Annotated[str, Meta(pattern=TOKEN_PATTERN, min_length=1, max_length=64)]
AgentName = Annotated[str, Meta(pattern=TOKEN_PATTERN, min_length=1, max_length=64)]
StepId = Annotated[str, Meta(pattern=TOKEN_PATTERN, min_length=1, max_length=64)]
Timeout = Annotated[float, Meta(gt=0, le=3600)]

#: Upper bound of a user message, in characters (the payload limit also applies).
MAX_MESSAGE_CHARS = 32_000


class ErrorInfo(Struct, frozen=True):
    """An error as it travels: a code from ``ErrorCode`` and a safe message."""

    code: str
    message: str


class ErrorReply(Struct, kw_only=True):
    """Body of an error reply from a generic endpoint (header ``Switchboard-Error`` set)."""

    correlation_id: str | None = None
    error: ErrorInfo


class Usage(Struct, kw_only=True):
    """LLM token usage, summed over a step or a conversation."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class ConversationRequest(Struct, kw_only=True):
    """What the BFF (or ``nats req``) sends to ``ai.orchestrator.converse``."""

    correlation_id: CorrelationId
    user_id: UserId
    message: Annotated[str, Meta(min_length=1, max_length=MAX_MESSAGE_CHARS)]
    conversation_id: CorrelationId | None = None
    timeout_s: Timeout | None = None
    #: Restrict the plan to these agents.
    agents: Annotated[list[AgentName], Meta(max_length=64)] | None = None


class PlanStep(Struct, kw_only=True):
    """One step of a plan: which agent does what, after which other steps."""

    id: StepId
    agent: AgentName
    instruction: Annotated[str, Meta(max_length=MAX_MESSAGE_CHARS)]
    depends_on: Annotated[list[StepId], Meta(max_length=64)] = field(default_factory=list)
    required: bool = True
    timeout_s: Timeout | None = None


class Plan(Struct, kw_only=True):
    """A DAG of steps. Validated (known agents, no cycles, size) before it runs."""

    steps: Annotated[list[PlanStep], Meta(max_length=256)]
    #: Who made it: "llm", "local", or "fallback" (the LLM's plan was unusable).
    source: str = "local"


StepStatus = Literal["ok", "failed", "skipped"]


class StepResult(Struct, kw_only=True):
    """How one step ended, with its output or its error."""

    id: str
    agent: str
    status: StepStatus
    required: bool = True
    output: Any = None
    error: ErrorInfo | None = None
    duration_ms: float = 0.0
    attempts: int = 0
    usage: Usage | None = None


class ConversationReply(Struct, kw_only=True):
    """The orchestrator's final answer (also sent, with ``error``, when it fails)."""

    correlation_id: str
    answer: str
    steps: list[StepResult] = field(default_factory=list)
    partial: bool = False
    usage: Usage = field(default_factory=Usage)
    duration_ms: float = 0.0
    error: ErrorInfo | None = None
    conversation_id: str | None = None


class AgentTask(Struct, kw_only=True):
    """What the orchestrator sends to ``ai.agents.<name>``."""

    correlation_id: CorrelationId
    task_id: StepId
    agent: AgentName
    instruction: Annotated[str, Meta(max_length=MAX_MESSAGE_CHARS)]
    #: step id -> output of that dependency
    inputs: dict[str, Any] = field(default_factory=dict)
    #: absolute unix time in ms (same value as the ``Switchboard-Deadline`` header)
    deadline_ms: int = 0
    user_id: str | None = None


class AgentResult(Struct, kw_only=True):
    """An agent's final reply to one task."""

    correlation_id: str
    task_id: str
    ok: bool
    output: Any = None
    error: ErrorInfo | None = None
    usage: Usage | None = None
    duration_ms: float = 0.0


EventKind = Literal[
    "planned", "step_started", "step_progress", "step_finished", "step_failed", "answered"
]


class ProgressEvent(Struct, kw_only=True):
    """Published on ``ai.events.<correlation_id>`` and streamed to the requester."""

    correlation_id: str
    kind: EventKind
    step: str | None = None
    agent: str | None = None
    detail: Any = None
    #: unix time, seconds
    ts: float = 0.0
    #: position in this conversation's event sequence (1, 2, ...): an SSE event id
    seq: int = 0


class ConversationTurn(Struct, kw_only=True):
    """One exchange kept in conversation memory (JetStream KV)."""

    correlation_id: str
    message: str
    answer: str
    ts: float = 0.0


class HistoryRequest(Struct, kw_only=True):
    """``ai.orchestrator.history``: one user's turns of one conversation."""

    user_id: UserId
    conversation_id: CorrelationId


class HistoryReply(Struct, kw_only=True):
    conversation_id: str
    turns: list[ConversationTurn] = field(default_factory=list)


def to_builtins(obj: Any) -> Any:
    """A Struct (or anything msgspec encodes) as plain dicts and lists."""
    return msgspec.to_builtins(obj)
