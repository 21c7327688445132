"""The offline provider: no model, deterministic, the default when no API key is set.

Planning and aggregation have rule-based offline paths of their own
(``LocalPlanner``, the deterministic aggregator); this provider only answers
free-text questions honestly: it says that no language model is configured.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import TracebackType
from typing import Self, TypeVar

from ..core.deadline import Deadline
from ..core.envelopes import Usage
from ..core.errors import LLMError
from ..metrics import LLM_REQUESTS
from .base import ChatMessage, Completion

__all__ = ["LocalLLM", "LocalTokenStream"]

T = TypeVar("T")

OFFLINE_ANSWER = (
    "No language model is configured, so I cannot answer open questions offline "
    "(set OPENAI_API_KEY, and OPENAI_BASE_URL for another OpenAI-compatible server). "
    "Offline I can calculate, tell the time and date anywhere, and analyse text."
)


class LocalLLM:
    """Deterministic stand-in for a language model."""

    provider = "local"
    model = "rules"
    offline = True

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        deadline: Deadline | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        LLM_REQUESTS.labels(self.provider, self.model, "ok").inc()
        return Completion(text=OFFLINE_ANSWER, usage=Usage())

    def stream(
        self,
        messages: list[ChatMessage],
        *,
        deadline: Deadline | None = None,
        max_tokens: int | None = None,
    ) -> LocalTokenStream:
        """The offline answer, word by word (always the same chunks)."""
        LLM_REQUESTS.labels(self.provider, self.model, "ok").inc()
        return LocalTokenStream(OFFLINE_ANSWER)

    async def structured(
        self,
        messages: list[ChatMessage],
        schema: type[T],
        *,
        name: str,
        description: str,
        deadline: Deadline | None = None,
    ) -> tuple[T, Usage]:
        LLM_REQUESTS.labels(self.provider, self.model, "unsupported").inc()
        raise LLMError(f"The offline provider cannot produce a {name}; use the local planner.")

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return "<LocalLLM (offline)>"


class LocalTokenStream:
    """A fixed text streamed as its words (each with its trailing space): deterministic."""

    def __init__(self, text: str) -> None:
        self._pieces: Iterator[str] = iter(re.findall(r"\S+\s*", text))
        self._parts: list[str] = []

    @property
    def usage(self) -> Usage:
        return Usage()

    @property
    def text(self) -> str:
        return "".join(self._parts)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        piece = next(self._pieces, None)
        if piece is None:
            raise StopAsyncIteration
        self._parts.append(piece)
        return piece
