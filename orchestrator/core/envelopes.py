"""The core envelopes (JSON, msgspec Structs): what any requester and worker exchange.

Error bodies, token usage, an agent's task and result. The conversation contract
built on them is ``orchestrator.core.conversation``; progress events are
``orchestrator.core.progress``.

Schema evolution rules (msgspec ``docs/schema-evolution.rst``): a new field
always gets a default, unknown fields are ignored on decode, and no field is
ever renamed or re-typed. So an old orchestrator and a new agent (or the
reverse) keep talking during a rolling upgrade.

Identifiers that end up in NATS subjects (correlation ids, user ids, agent
names, step ids) are restricted to subject-safe tokens: ASCII letters,
digits, ``_`` and ``-`` (no ``.``, ``*``, ``>`` or white space).
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType, field

from .subjects import TOKEN_PATTERN

__all__ = [
    "MAX_MESSAGE_CHARS",
    "AgentName",
    "AgentResult",
    "AgentTask",
    "CorrelationId",
    "ErrorInfo",
    "ErrorReply",
    "StepId",
    "Timeout",
    "Usage",
    "UserId",
]

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


class AgentTask(Struct, kw_only=True):
    """What the orchestrator sends to ``ai.agents.<name>``.

    The time budget travels once, in the ``Switchboard-Timeout`` header (an older
    ``deadline_ms`` field, absolute wall-clock time, is ignored when it arrives).
    """

    correlation_id: CorrelationId
    task_id: StepId
    agent: AgentName
    instruction: Annotated[str, Meta(max_length=MAX_MESSAGE_CHARS)]
    #: step id -> output of that dependency
    inputs: dict[str, Any] = field(default_factory=dict)
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
    #: On the result of an agent-to-agent call: the calls of the budget it was leased
    #: (``Switchboard-Call-Budget``) that it did not use, given back to its caller. Unset
    #: (not sent) on a plan step's result.
    unused_calls: int | UnsetType = UNSET
