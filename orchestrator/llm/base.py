"""The LLM provider interface the planner, the aggregator and LLM agents use."""

from __future__ import annotations

from typing import Literal, Protocol, TypeVar

import msgspec

from ..core.deadline import Deadline
from ..core.envelopes import Usage

__all__ = ["LLM", "ChatMessage", "Completion", "Role"]

T = TypeVar("T")

Role = Literal["system", "user", "assistant"]


class ChatMessage(msgspec.Struct, frozen=True):
    role: Role
    content: str


class Completion(msgspec.Struct, frozen=True):
    text: str
    usage: Usage = msgspec.field(default_factory=Usage)


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
