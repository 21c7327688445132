"""Progress events: what a conversation tells its watchers while it runs.

One msgspec Struct per kind of event, together a tagged union on ``kind``
(:data:`ProgressEvent`), each with a ``detail`` of its own type:

=================  =====================  ===============================================
``kind``           event                  ``detail``
=================  =====================  ===============================================
``planned``        :class:`PlannedEvent`  the :class:`Plan` about to run
``step_started``   StepStartedEvent       :class:`StepStartedDetail` (the instruction)
``step_progress``  StepProgressEvent      whatever the agent reported (any JSON value)
``step_finished``  StepFinishedEvent      :class:`StepFinishedDetail` (output or preview)
``step_failed``    StepFailedEvent        :class:`ErrorInfo` (code ``skipped``: never ran)
``answered``       AnsweredEvent          :class:`AnsweredDetail` (answer or preview)
``replanned``      ReplannedEvent         :class:`ReplannedDetail` (round, reason, its plan)
``token``          TokenEvent             :class:`TokenDetail` (text of a streamed answer)
``call_started``   CallStartedEvent       :class:`CallDetail` (an agent called an agent)
``call_finished``  CallFinishedEvent      :class:`CallDetail` (that call's outcome)
=================  =====================  ===============================================

The two ``call_*`` kinds are nested calls (``ctx.call``): ``step`` is the plan step under
which they run, ``agent`` the callee, and the detail's ``path`` the whole way down
(``s1>trip>clock``), so a reader can draw them nested under their step. Each caller
passes its callees' events up with its own progress.

Readers tell them apart with ``match`` (msgspec's ``examples/asyncio-kv``)::

    match event:
        case PlannedEvent(detail=plan):
            print(len(plan.steps), "steps")
        case StepFailedEvent(step=step, detail=error):
            print(step, "failed:", error.message)

The bytes on the wire are exactly those of the single flat ``ProgressEvent`` struct
this replaced -- ``correlation_id, kind, step, agent, detail, ts, seq`` in that order --
so the web page, ``nats sub 'ai.events.>'`` and parts of an older release read them
unchanged, and the union decodes what those send. msgspec writes a tag field first, so
events are encoded with :func:`encode_event`, never ``codec.encode`` (whose JSON differs
in key order only, and still decodes everywhere).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal, TypeAlias, cast

from msgspec import UNSET, Struct, UnsetType

from .codec import DEFAULT_MAX_PAYLOAD, decode, encode
from .conversation import Plan
from .envelopes import ErrorInfo

__all__ = [
    "AnsweredDetail",
    "AnsweredEvent",
    "CallDetail",
    "CallFinishedEvent",
    "CallStartedEvent",
    "EventKind",
    "PlannedEvent",
    "ProgressEvent",
    "ReplannedDetail",
    "ReplannedEvent",
    "StepFailedEvent",
    "StepFinishedDetail",
    "StepFinishedEvent",
    "StepProgressEvent",
    "StepStartedDetail",
    "StepStartedEvent",
    "TokenDetail",
    "TokenEvent",
    "decode_event",
    "encode_event",
    "event_time",
]

EventKind = Literal[
    "planned",
    "step_started",
    "step_progress",
    "step_finished",
    "step_failed",
    "answered",
    "replanned",
    "token",
    "call_started",
    "call_finished",
]


class StepStartedDetail(Struct, kw_only=True):
    """``step_started``: what the step's agent was asked to do."""

    instruction: str


class StepFinishedDetail(Struct, kw_only=True):
    """``step_finished``: the step's output (any JSON value the agent returned).

    An output over ``PREVIEW_BYTES`` (``core.sizes``) travels as a preview: its first
    characters, ``truncated`` true and ``size`` its whole JSON size in bytes; the final
    reply brings the content. Unset, the two fields are not sent (a small output's event
    is byte for byte what older releases sent).
    """

    output: Any = None
    truncated: bool | UnsetType = UNSET
    size: int | UnsetType = UNSET


class AnsweredDetail(Struct, kw_only=True):
    """``answered``: the final answer, and whether a required step failed.

    An answer over ``PREVIEW_BYTES`` is a preview here, as in ``StepFinishedDetail``
    (``truncated``, ``size``): the final reply carries it whole.
    """

    answer: str
    partial: bool = False
    truncated: bool | UnsetType = UNSET
    size: int | UnsetType = UNSET


class ReplannedDetail(Struct, kw_only=True):
    """``replanned``: a new round of steps, planned after reading the earlier rounds' results.

    ``round`` counts from 1 (the ``planned`` event's plan); ``reason`` says, in a sentence,
    why another round runs; ``plan`` holds this round's steps only (their ``depends_on``
    may name steps of earlier rounds).
    """

    round: int
    reason: str
    plan: Plan


class TokenDetail(Struct, kw_only=True):
    """``token``: the next piece of an answer a language model is writing.

    Pieces of one step (or, with no step, of the conversation's answer) arrive in order;
    joined, they are the text the model wrote (the step's output, or the answer, may
    still differ: an agent may post-process it). ``path`` is the call path of the agent
    that wrote it when it was called by another agent (``ctx.call``); unset otherwise.
    """

    text: str
    path: str | UnsetType = UNSET


class CallDetail(Struct, kw_only=True):
    """``call_started`` / ``call_finished``: one agent-to-agent call.

    ``path`` is the call's path (``s1>trip>clock``: the step, the caller, the callee);
    ``task_id`` the callee's task (one per call: two calls may share a path);
    ``instruction`` what the callee was asked. On ``call_finished``, ``ok`` and either a
    preview of the ``output`` or the ``error``; ``duration_ms`` as the caller measured it.
    """

    path: str
    task_id: str = ""
    instruction: str = ""
    ok: bool | UnsetType = UNSET
    output: Any = UNSET
    error: ErrorInfo | UnsetType = UNSET
    duration_ms: float | UnsetType = UNSET


class _Event(Struct, kw_only=True, tag_field="kind"):
    """The fields every event has. Published on ``ai.events.<correlation_id>`` and
    streamed to the requester that asked for progress."""

    correlation_id: str
    step: str | None = None
    agent: str | None = None
    #: unix time, seconds
    ts: float = 0.0
    #: position in this conversation's event sequence (1, 2, ...): an SSE event id
    seq: int = 0


class PlannedEvent(_Event, kw_only=True, tag="planned"):
    """The plan is made and validated; its steps start next."""

    kind: ClassVar[Literal["planned"]] = "planned"
    detail: Plan


class StepStartedEvent(_Event, kw_only=True, tag="step_started"):
    """A step's request is on its way to its agent."""

    kind: ClassVar[Literal["step_started"]] = "step_started"
    detail: StepStartedDetail


class StepProgressEvent(_Event, kw_only=True, tag="step_progress"):
    """An agent says how its step goes (``ctx.progress(...)``); best effort."""

    kind: ClassVar[Literal["step_progress"]] = "step_progress"
    detail: Any = None


class StepFinishedEvent(_Event, kw_only=True, tag="step_finished"):
    """A step's agent answered."""

    kind: ClassVar[Literal["step_finished"]] = "step_finished"
    detail: StepFinishedDetail


class StepFailedEvent(_Event, kw_only=True, tag="step_failed"):
    """A step failed (its error's code), or was skipped because one it needs failed."""

    kind: ClassVar[Literal["step_failed"]] = "step_failed"
    detail: ErrorInfo


class AnsweredEvent(_Event, kw_only=True, tag="answered"):
    """The answer is written; the final reply follows."""

    kind: ClassVar[Literal["answered"]] = "answered"
    detail: AnsweredDetail


class ReplannedEvent(_Event, kw_only=True, tag="replanned"):
    """Another round starts: its steps' events follow."""

    kind: ClassVar[Literal["replanned"]] = "replanned"
    detail: ReplannedDetail


class TokenEvent(_Event, kw_only=True, tag="token"):
    """Text of an answer being written, as it comes (coalesced: see ``core.tokens``).

    ``step`` and ``agent`` name the step whose agent streams; both unset: the
    conversation's answer itself (the aggregator writing it with the LLM).
    """

    kind: ClassVar[Literal["token"]] = "token"
    detail: TokenDetail


class CallStartedEvent(_Event, kw_only=True, tag="call_started"):
    """An agent called another agent (``ctx.call``), under plan step ``step``."""

    kind: ClassVar[Literal["call_started"]] = "call_started"
    detail: CallDetail


class CallFinishedEvent(_Event, kw_only=True, tag="call_finished"):
    """An agent-to-agent call ended (answered, failed or refused)."""

    kind: ClassVar[Literal["call_finished"]] = "call_finished"
    detail: CallDetail


#: Any progress event: decode with ``decode(data, ProgressEvent)``, tell apart with ``match``.
ProgressEvent: TypeAlias = (
    PlannedEvent
    | StepStartedEvent
    | StepProgressEvent
    | StepFinishedEvent
    | StepFailedEvent
    | AnsweredEvent
    | ReplannedEvent
    | TokenEvent
    | CallStartedEvent
    | CallFinishedEvent
)

#: The event type of each kind.
EVENT_TYPES: dict[str, type[ProgressEvent]] = {
    cls.kind: cls
    for cls in (
        PlannedEvent,
        StepStartedEvent,
        StepProgressEvent,
        StepFinishedEvent,
        StepFailedEvent,
        AnsweredEvent,
        ReplannedEvent,
        TokenEvent,
        CallStartedEvent,
        CallFinishedEvent,
    )
}


class _WireEvent(Struct):
    """An event's fields in their order on the wire (the one flat struct of old)."""

    correlation_id: str
    kind: str
    step: str | None
    agent: str | None
    detail: Any
    ts: float
    seq: int


def event_time() -> float:
    """An event's ``ts``: wall-clock seconds, to the millisecond, for the people who read it
    (a page, ``nats sub``). Nothing decides anything by it: parts' clocks disagree."""
    return round(time.time(), 3)


def encode_event(event: ProgressEvent) -> bytes:
    """``event`` as JSON, byte for byte what every release has sent for it."""
    return encode(
        _WireEvent(
            event.correlation_id,
            event.kind,
            event.step,
            event.agent,
            event.detail,
            event.ts,
            event.seq,
        )
    )


def decode_event(
    data: bytes | bytearray | memoryview | str, *, max_bytes: int | None = DEFAULT_MAX_PAYLOAD
) -> ProgressEvent:
    """Decode one progress event, of whichever kind its ``kind`` says.

    Raises:
        PayloadTooLargeError: ``data`` is longer than ``max_bytes`` (not parsed).
        DecodeError: not an event: an unknown ``kind``, a field of the wrong type ...
    """
    event: ProgressEvent = decode(data, cast(Any, ProgressEvent), max_bytes=max_bytes)
    return event
