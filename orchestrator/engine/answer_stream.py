"""The aggregator's answer, streamed: the model's text goes to the conversation's watchers
as ``token`` events (coalesced, see ``core.tokens``) while it is written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..core.deadline import Deadline
from ..core.errors import LLMError
from ..core.progress import TokenDetail
from ..core.tokens import TokenCoalescer
from ..llm.base import LLM, ChatMessage, Completion
from .events import EventSink

__all__ = ["TokenEmitter", "answer_tokens", "stream_completion"]

#: Where the text of a streamed answer goes, piece by piece.
TokenEmitter = Callable[[str], Awaitable[object]]


def answer_tokens(events: EventSink) -> TokenEmitter:
    """The emitter that sends an answer's text as the conversation's ``token`` events
    (no step: the answer itself)."""

    async def emit(text: str) -> None:
        await events.emit("token", detail=TokenDetail(text=text))

    return emit


async def stream_completion(
    llm: LLM,
    messages: list[ChatMessage],
    *,
    emit: TokenEmitter,
    deadline: Deadline | None = None,
    max_tokens: int | None = None,
) -> Completion:
    """:meth:`LLM.complete`, streamed to ``emit`` as it is written.

    Raises:
        LLMError: the provider failed (some text may have been emitted already), or wrote
            nothing.
    """
    async with (
        llm.stream(messages, deadline=deadline, max_tokens=max_tokens) as tokens,
        TokenCoalescer(emit) as batch,  # left first: the rest is sent, then the stream closed
    ):
        async for text in tokens:
            await batch.add(text)
    text = tokens.text.strip()
    if not text:
        raise LLMError(f"The model {llm.model} answered with no text.")
    return Completion(text=text, usage=tokens.usage)
