"""The conversation contract (JSON, msgspec Structs): what the BFF and the orchestrator exchange.

Requests, plans, step results, replies and history. The envelopes every part
shares (errors, usage, agent tasks and results, progress) are in
``orchestrator.core.envelopes``; the same schema evolution rules hold.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct, field

from .codec import NOT_BLANK
from .envelopes import (
    MAX_MESSAGE_CHARS,
    AgentName,
    CorrelationId,
    ErrorInfo,
    StepId,
    Timeout,
    Usage,
    UserId,
)

__all__ = [
    "ConversationReply",
    "ConversationRequest",
    "ConversationTurn",
    "HistoryReply",
    "HistoryRequest",
    "Plan",
    "PlanStep",
    "StepResult",
    "StepStatus",
    "TurnStep",
]


class ConversationRequest(Struct, kw_only=True):
    """What the BFF (or ``nats req``) sends to ``ai.orchestrator.converse``."""

    correlation_id: CorrelationId
    user_id: UserId
    #: Not blank: a message of only spaces is as empty as no message (bad_request).
    message: Annotated[str, Meta(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=NOT_BLANK)]
    conversation_id: CorrelationId | None = None
    timeout_s: Timeout | None = None
    #: Restrict the plan to these agents.
    agents: Annotated[list[AgentName], Meta(max_length=64)] | None = None
    #: Also publish this conversation's progress on ``ai.events.<correlation_id>`` for
    #: watchers (``nats sub``), when the deployment does not publish every conversation's.
    watch: bool = False


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
    #: Who made it: "llm", "local", "fallback" (the LLM's plan was unusable), or "rules"
    #: (the rules were sure of a one-clause request, so no LLM was asked).
    source: str = "local"


StepStatus = Literal["ok", "failed", "skipped"]


class StepResult(Struct, kw_only=True):
    """How one step ended, with its output or its error.

    In a ConversationReply, an output the answer already contains (or one that would not
    fit beside it) is a preview (``core.sizes``): ``output_truncated`` is true and
    ``output_size`` is the whole output's JSON size in bytes.
    """

    id: str
    agent: str
    status: StepStatus
    required: bool = True
    output: Any = None
    error: ErrorInfo | None = None
    duration_ms: float = 0.0
    attempts: int = 0
    usage: Usage | None = None
    output_truncated: bool = False
    output_size: int | None = None
    #: The planning round that made this step (1: the first plan; see ``engine.rounds``).
    round: int = 1


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


class TurnStep(Struct, kw_only=True):
    """One step of a remembered turn: who did what, how it ended, a preview of its output.

    Bounded (``engine.history``): the instruction and the output preview are cut short, so
    a turn's steps stay small whatever the agents answered.
    """

    id: str
    agent: str
    instruction: str = ""
    status: StepStatus = "ok"
    #: The output (or the error's message) as short text; ``...`` ends a cut one.
    output: str = ""
    round: int = 1


class ConversationTurn(Struct, kw_only=True):
    """One exchange kept in conversation memory (JetStream KV).

    ``steps`` is empty in turns stored by releases that kept only message and answer.
    """

    correlation_id: str
    message: str
    answer: str
    ts: float = 0.0
    steps: list[TurnStep] = field(default_factory=list)


class HistoryRequest(Struct, kw_only=True):
    """``ai.orchestrator.history``: one user's turns of one conversation."""

    user_id: UserId
    conversation_id: CorrelationId


class HistoryReply(Struct, kw_only=True):
    conversation_id: str
    turns: list[ConversationTurn] = field(default_factory=list)
