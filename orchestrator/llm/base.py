"""The LLM provider interface the planner, the aggregator and LLM agents use."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar, runtime_checkable

import msgspec

from ..core.deadline import Deadline
from ..core.envelopes import Usage

__all__ = [
    "LLM",
    "ChatMessage",
    "Completion",
    "Role",
    "TokenStream",
    "Tool",
    "ToolCall",
    "ToolCallingLLM",
    "ToolTurn",
]

T = TypeVar("T")

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A function call the model asked for: its id, the tool's name, the raw JSON arguments
    (the model's text, not necessarily valid JSON)."""

    id: str
    name: str
    arguments: str = "{}"


class ChatMessage(msgspec.Struct, frozen=True):
    """One message of a chat.

    An assistant message may carry the ``tool_calls`` it made; a ``tool`` message is the
    result of one of them (``tool_call_id``) -- the only way a tool's output reaches the
    model, as data.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


class Tool(msgspec.Struct, frozen=True, kw_only=True):
    """A function the model may call: ``parameters`` is its JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


class ToolTurn(msgspec.Struct, frozen=True, kw_only=True):
    """The model's turn in a tool-calling loop: the calls it makes, or its text answer."""

    text: str | None = None
    calls: tuple[ToolCall, ...] = ()
    usage: Usage = msgspec.field(default_factory=Usage)


class Completion(msgspec.Struct, frozen=True):
    text: str
    usage: Usage = msgspec.field(default_factory=Usage)


class TokenStream(Protocol):
    """A streamed answer: the text as it is generated, then its usage.

    ::

        async with llm.stream(messages, deadline=deadline) as tokens:
            async for text in tokens:
                ...  # a chunk of the answer, in order
        tokens.usage  # counted from the stream (zero when the server sends none)

    Leaving the block early (``break``, an error, the task cancelled) closes the stream:
    the HTTP response is closed, so the model server stops generating.

    Raises (from entering the block or the iteration):
        LLMError: the provider failed, or the deadline passed.
    """

    @property
    def usage(self) -> Usage: ...

    @property
    def text(self) -> str:
        """The chunks so far, joined."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def __aiter__(self) -> Self: ...

    async def __anext__(self) -> str: ...


class LLM(Protocol):
    """A language model: free text, or a value of a msgspec type.

    Implementations translate their own errors into
    :class:`~switchboard.orchestrator.core.errors.LLMError` and never run past ``deadline``.
    """

    @property
    def provider(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def offline(self) -> bool:
        """True for the deterministic local provider (no model behind it)."""
        ...

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        deadline: Deadline | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """Free-text answer to ``messages``.

        Raises:
            LLMError: the provider failed after its retries, or timed out.
        """
        ...

    def stream(
        self,
        messages: list[ChatMessage],
        *,
        deadline: Deadline | None = None,
        max_tokens: int | None = None,
    ) -> TokenStream:
        """:meth:`complete`, streamed: use as ``async with llm.stream(...) as tokens``.

        Nothing is sent before the block is entered.
        """
        ...

    async def structured(
        self,
        messages: list[ChatMessage],
        schema: type[T],
        *,
        name: str,
        description: str,
        deadline: Deadline | None = None,
    ) -> tuple[T, Usage]:
        """A ``schema`` value (JSON validated with msgspec) answering ``messages``.

        Raises:
            LLMError: the provider failed, or its answer is not a valid ``schema``.
        """
        ...


@runtime_checkable
class ToolCallingLLM(LLM, Protocol):
    """A language model that can take part in the tool-calling loop (``engine.rounds``)."""

    async def tool_round(
        self,
        messages: list[ChatMessage],
        tools: list[Tool],
        *,
        final: bool = False,
        deadline: Deadline | None = None,
    ) -> ToolTurn:
        """The model's next turn: parallel tool calls, or a text answer.

        ``final``: the model may call no tool (``tool_choice="none"``): it must answer.

        Raises:
            LLMError: the provider failed after its retries, or timed out.
        """
        ...
