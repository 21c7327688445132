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

An agent may call the agents it declares (``calls=``) through its context::

    @agent("trip", "Answers travel time questions.", calls=("clock", "calculator"))
    async def trip(task, ctx):
        now = await ctx.call("clock", "time in Tokyo")
        hours = await ctx.call("calculator", "13 + 9")
        ...

See :meth:`TaskContext.call` and :meth:`TaskContext.call_all`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from switchboard.orchestrator.core import (
    AgentTask,
    CallForbiddenError,
    Deadline,
    LLMError,
    StepProgressEvent,
    SwitchboardError,
    TokenCoalescer,
    TokenDetail,
    TokenEvent,
    Usage,
    encode_event,
    event_time,
    is_safe_token,
)
from switchboard.orchestrator.llm.base import LLM, ChatMessage

if TYPE_CHECKING:
    from .calls import Caller

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
    #: The agents this one may call (``ctx.call``); the NATS permissions of its user
    #: allow exactly these (``deploy/nats/auth.conf``).
    calls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not is_safe_token(self.name) or len(self.name) > 64:
            raise ValueError(
                f"Agent name {self.name!r} must be 1-64 letters, digits, '_' or '-' "
                "(it becomes the NATS subject ai.agents.<name>)."
            )
        for callee in self.calls:
            if not is_safe_token(callee) or len(callee) > 64 or callee == self.name:
                raise ValueError(
                    f"Agent {self.name!r} declares a call to {callee!r}: an agent name, "
                    "not its own."
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
    calls: tuple[str, ...] = (),
) -> Callable[[AgentHandler], Agent]:
    """Decorator: turn an async handler into an :class:`Agent`.

    ``calls`` names the agents its handler may call with ``ctx.call``.
    """

    def wrap(handler: AgentHandler) -> Agent:
        return Agent(
            name=name,
            description=description,
            handler=handler,
            keywords=keywords,
            patterns=patterns,
            input_hints=input_hints,
            version=version,
            calls=calls,
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
    _caller: Caller | None = None

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
            ts=event_time(),
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
            ts=event_time(),
        )
        return await self._progress(encode_event(event))

    async def call(
        self,
        agent: str,
        instruction: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        budget: int | None = None,
    ) -> Any:
        """Ask another agent (one this agent declares in ``calls=``); its output.

        The call carries this task's correlation id and user, and this task's time left
        minus a margin (``timeout`` seconds, if sooner): the callee never outlives its
        caller. ``budget`` is how many calls the callee may make in turn (default: half of
        what this task has left after this call; what it does not use comes back).
        Cancelling the caller cancels the callee. The callee's LLM usage is added to
        :attr:`usage`. Several calls at once: :meth:`call_all`, or ``asyncio.gather``.

        Raises:
            CallForbiddenError: ``agent`` is not declared.
            CallCycleError: ``agent`` is already on the call path (it would loop).
            CallDepthError: the calls would nest deeper than ``max_call_depth``.
            CallBudgetError: the conversation's budget of calls is spent.
            RemoteError: the callee failed (``.code``: agent_error, timeout ...).
            RequestTimeoutError, NoRespondersError: as any agent request.
        """
        if self._caller is None:
            raise CallForbiddenError(
                f"The {self.task.agent} agent cannot call {agent}: its worker has no caller."
            )
        try:
            return await self._caller.call(
                agent,
                instruction,
                deadline=self.deadline,
                inputs=inputs,
                timeout=timeout,
                budget=budget,
            )
        finally:
            self.usage = self.usage + self._caller.usage
            self._caller.usage = Usage()

    async def call_all(
        self,
        calls: Sequence[tuple[str, str]],
        *,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """:meth:`call` each ``(agent, instruction)`` at once; their outputs, in order.

        The calls left are shared evenly among them. The first error (a
        :class:`SwitchboardError`) cancels the others and is raised; with
        ``return_exceptions`` each failed call's error is in its place instead.
        """
        if not calls:
            return []
        left = self._caller.budget.left if self._caller is not None else 0
        share = max(0, left - len(calls)) // len(calls)
        results: list[Any] = [None] * len(calls)

        async def one(index: int, agent: str, instruction: str) -> None:
            try:
                results[index] = await self.call(agent, instruction, budget=share)
            except SwitchboardError as exc:
                if not return_exceptions:
                    raise
                results[index] = exc

        try:
            async with asyncio.TaskGroup() as group:
                for index, (agent, instruction) in enumerate(calls):
                    group.create_task(one(index, agent, instruction))
        except ExceptionGroup as failed:
            first = failed.exceptions[0]
            if all(isinstance(exc, SwitchboardError) for exc in failed.exceptions):
                raise first from None
            raise
        return results

    @property
    def calls_left(self) -> int:
        """How many more calls this task (and its callees together) may make."""
        return self._caller.budget.left if self._caller is not None else 0
