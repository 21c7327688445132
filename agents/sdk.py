"""Writing an agent: a name, a description the planner reads, and one async handler.

::

    from switchboard.agents import agent

    @agent("weather", "Tells the weather in a city. Example: 'weather in Paris'",
           keywords=("weather", "rain", "forecast"))
    async def weather(task, ctx):
        city = task.instruction.rsplit(" in ", 1)[-1].strip(" ?.!")
        await ctx.progress(f"looking outside in {city}")
        return f"Sunny in {city}"

The handler gets the :class:`~switchboard.orchestrator.core.envelopes.AgentTask`: its
``instruction`` is the agent's clause of the user's question, verbatim ("what is the weather
in Paris"), or the instruction a language-model planner wrote for it -- text to read what it
needs from, not a parsed argument; dependency outputs are in ``task.inputs``. And a
:class:`TaskContext` (correlation id, deadline and time left, a progress reporter, the LLM
provider, a bound logger). It returns text or any msgspec-encodable value. Raise
:class:`~switchboard.orchestrator.core.errors.AgentError` for a clear, user-facing failure;
anything else is reported as an internal error and logged.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from msgspec import UNSET

from switchboard.orchestrator.core import (
    AgentTask,
    Deadline,
    LLMError,
    StepProgressEvent,
    TokenCoalescer,
    TokenDetail,
    TokenEvent,
    Usage,
    encode_event,
    is_safe_token,
)
from switchboard.orchestrator.llm.base import LLM, ChatMessage

__all__ = ["Agent", "AgentHandler", "TaskContext", "agent"]

AgentHandler = Callable[[AgentTask, "TaskContext"], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent definition: what it is called, what it does, and its handler."""

    name: str
    description: str
    handler: AgentHandler
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    input_hints: str = ""
    version: str = "1.0.0"

    def __post_init__(self) -> None:
        if not is_safe_token(self.name) or len(self.name) > 64:
            raise ValueError(
                f"Agent name {self.name!r} must be 1-64 letters, digits, '_' or '-' "
                "(it becomes the NATS subject ai.agents.<name>)."
            )
        if not self.description.strip():
            raise ValueError(f"Agent {self.name!r} needs a description: the planner reads it.")


def agent(
    name: str,
    description: str,
    *,
    keywords: tuple[str, ...] = (),
    patterns: tuple[str, ...] = (),
    input_hints: str = "",
    version: str = "1.0.0",
) -> Callable[[AgentHandler], Agent]:
    """Decorator: turn an async handler into an :class:`Agent`."""

    def wrap(handler: AgentHandler) -> Agent:
        return Agent(
            name=name,
            description=description,
            handler=handler,
            keywords=keywords,
            patterns=patterns,
            input_hints=input_hints,
            version=version,
        )

    return wrap


@dataclass(slots=True)
class TaskContext:
    """What a handler knows about the task it runs, and what it can do besides returning."""

    task: AgentTask
    deadline: Deadline
    llm: LLM
    log: Any
    _progress: Callable[[bytes], Awaitable[bool]]
    usage: Usage = field(default_factory=Usage)
    #: The call path of this task when another agent called it (``ctx.call``); tokens it
    #: streams carry it, so the user sees which nested call wrote them.
    call_path: str | None = None

    @property
    def correlation_id(self) -> str:
        return self.task.correlation_id

    @property
    def task_id(self) -> str:
        return self.task.task_id

    @property
    def user_id(self) -> str | None:
        return self.task.user_id

    def time_left(self) -> float:
        """Seconds until the task's deadline."""
        return max(0.0, self.deadline.remaining())

    async def progress(self, detail: Any) -> bool:
        """Tell the requester how the work goes (shown live in the web page); best effort."""
        event = StepProgressEvent(
            correlation_id=self.task.correlation_id,
            step=self.task.task_id,
            agent=self.task.agent,
            detail=detail,
            ts=time.time(),
        )
        return await self._progress(encode_event(event))

    async def ask_llm(
        self,
        prompt: str,
        *,
        system: str | None = None,
        max_tokens: int | None = None,
        stream: bool = False,
    ) -> str:
        """One completion from the configured LLM, within the deadline; usage is counted.

        ``stream=True``: the answer also goes to the requester as it is written, as
        ``token`` progress events (coalesced, see ``core.tokens``: the first piece at once,
        then at most one message per 50 ms or 512 bytes); the whole text is returned as
        ever. The offline provider has nothing to stream: its fixed answer is returned.

        Raises:
            LLMError: the provider failed.
        """
        messages = [ChatMessage("system", system)] if system else []
        messages.append(ChatMessage("user", prompt))
        if stream and not self.llm.offline:
            return await self._stream_llm(messages, max_tokens)
        completion = await self.llm.complete(
            messages, deadline=self.deadline, max_tokens=max_tokens
        )
        self.usage = self.usage + completion.usage
        return completion.text

    async def _stream_llm(self, messages: list[ChatMessage], max_tokens: int | None) -> str:
        async with self.llm.stream(
            messages, deadline=self.deadline, max_tokens=max_tokens
        ) as tokens:
            try:
                async with TokenCoalescer(self._send_tokens) as batch:
                    async for text in tokens:
                        await batch.add(text)
            finally:
                self.usage = self.usage + tokens.usage
        text = tokens.text.strip()
        if not text:
            raise LLMError(f"The model {self.llm.model} answered with no text.")
        return text

    async def _send_tokens(self, text: str) -> bool:
        event = TokenEvent(
            correlation_id=self.task.correlation_id,
            step=self.task.task_id,
            agent=self.task.agent,
            detail=TokenDetail(text=text, path=self.call_path or UNSET),
            ts=time.time(),
        )
        return await self._progress(encode_event(event))
