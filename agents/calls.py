"""Agent-to-agent calls from inside a handler: ``await ctx.call("calculator", "17*23")``.

A :class:`Caller` is made per task by the worker. It sends each call through the agent
process's own :class:`~switchboard.orchestrator.core.Requester` (its one inbox and
correlation tracker), as the orchestrator sends steps: the same correlation id and user,
the caller's time left minus a margin (so a callee never outlives its caller), a fresh
request id (kept across the retries of one call), heartbeats (so a callee that died is
noticed in seconds). The call path and the lease of the call budget travel in headers
(see :mod:`switchboard.orchestrator.core.calls`); cycles, depth, budget and undeclared
callees are refused before anything is sent.

The callee's nested-call events (``call_started``, ``call_finished``) are passed on as
this task's progress, so the orchestrator shows the whole tree under its step. A caller
cancelled mid-call tells its callee to stop (the requester's cancel notice); a callee
that went silent (its process died) gets a subtree cancel, so its own callees stop too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog

from switchboard.orchestrator.core import (
    AgentResult,
    AgentTask,
    CallBudget,
    CallBudgetError,
    CallCycleError,
    CallDepthError,
    CallDetail,
    CallFinishedEvent,
    CallForbiddenError,
    CallPath,
    CallRefusedError,
    CallStartedEvent,
    Deadline,
    DecodeError,
    ErrorCode,
    ErrorInfo,
    RemoteError,
    Requester,
    RequestOptions,
    RequestTimeoutError,
    SwitchboardError,
    TokenEvent,
    Usage,
    encode_event,
    event_time,
    headers,
    metrics,
    new_request_id,
    preview,
    work_deadline,
)

__all__ = ["Caller"]

log = structlog.get_logger("switchboard.calls")

Progress = Callable[[bytes], Awaitable[bool]]

#: A refusal the callee's worker sent back, as the error the caller's SDK raises for it.
_REFUSALS: dict[ErrorCode, type[CallRefusedError]] = {
    ErrorCode.CALL_CYCLE: CallCycleError,
    ErrorCode.CALL_DEPTH: CallDepthError,
    ErrorCode.CALL_BUDGET: CallBudgetError,
    ErrorCode.CALL_FORBIDDEN: CallForbiddenError,
}


class Caller:
    """The calls one task may make: whom (declared), how deep, how many, by when."""

    __slots__ = (
        "_progress",
        "accept_timeout",
        "budget",
        "declared",
        "followed",
        "heartbeat",
        "max_depth",
        "path",
        "requester",
        "retries",
        "task",
        "usage",
    )

    def __init__(
        self,
        requester: Requester | None,
        task: AgentTask,
        *,
        path: CallPath,
        budget: CallBudget,
        declared: Sequence[str],
        max_depth: int,
        progress: Progress,
        followed: bool = True,
        heartbeat: float = 1.0,
        accept_timeout: float | None = 5.0,
        retries: int = 2,
    ) -> None:
        self.requester = requester
        self.task = task
        self.path = path
        self.budget = budget
        self.declared = frozenset(declared)
        self.max_depth = max_depth
        self._progress = progress
        #: Whether anyone follows this task's progress (else callees are not asked for theirs).
        self.followed = followed
        self.heartbeat = heartbeat
        self.accept_timeout = accept_timeout
        self.retries = retries
        #: The LLM tokens the callees reported, summed.
        self.usage = Usage()

    async def call(
        self,
        agent: str,
        instruction: str,
        *,
        deadline: Deadline,
        inputs: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        budget: int | None = None,
    ) -> Any:
        """Call ``agent`` with ``instruction``; its output (see ``TaskContext.call``)."""
        outcome = "ok"
        try:
            return await self._call(agent, instruction, deadline, inputs, timeout, budget)
        except SwitchboardError as exc:
            outcome = exc.code.value
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            metrics.AGENT_CALLS.labels(self.path.agent, agent, outcome).inc()

    async def _call(
        self,
        agent: str,
        instruction: str,
        deadline: Deadline,
        inputs: Mapping[str, Any] | None,
        timeout: float | None,
        budget: int | None,
    ) -> Any:
        if agent not in self.declared:
            raise CallForbiddenError(
                f"The {self.path.agent} agent may not call {agent}: it declares "
                f"calls={tuple(sorted(self.declared))} (@agent(..., calls=(...)))",
                path=f"{self.path}>{agent}",
            )
        path = self.path.then(agent, max_depth=self.max_depth)
        if self.requester is None:
            raise CallForbiddenError(
                f"The {self.path.agent} agent runs without a requester, so it cannot call "
                f"{agent} (start its worker with one).",
                path=str(path),
            )
        lease = self.budget.lease(path, budget)
        call_deadline = work_deadline(deadline).earlier(timeout)
        task = AgentTask(
            correlation_id=self.task.correlation_id,
            task_id=f"call-{uuid.uuid4().hex[:16]}",
            agent=agent,
            instruction=instruction,
            inputs=dict(inputs or {}),
            user_id=self.task.user_id,
        )
        options = RequestOptions(
            target=agent,
            heartbeat=self.heartbeat,
            accept_timeout=self.accept_timeout,
            request_id=new_request_id(),
            headers={headers.CALL_PATH: str(path), headers.CALL_BUDGET: str(lease)},
        )
        started = time.perf_counter()
        await self._emit(
            CallStartedEvent,
            path,
            CallDetail(path=str(path), task_id=task.task_id, instruction=instruction),
        )
        try:
            result = await self._send(task, path, call_deadline, options)
        except SwitchboardError as exc:
            error = _refusal(exc, path)
            await self._emit(
                CallFinishedEvent,
                path,
                CallDetail(
                    path=str(path),
                    task_id=task.task_id,
                    ok=False,
                    error=ErrorInfo(error.code.value, str(error)),
                    duration_ms=_ms(started),
                ),
            )
            if error is exc:
                raise
            raise error from exc
        self.budget.give_back(lease, result.unused_calls or 0)
        if result.usage is not None:
            self.usage = self.usage + result.usage
        await self._emit(
            CallFinishedEvent,
            path,
            CallDetail(
                path=str(path),
                task_id=task.task_id,
                ok=True,
                output=preview(result.output).value,
                duration_ms=_ms(started),
            ),
        )
        return result.output

    async def _send(
        self, task: AgentTask, path: CallPath, deadline: Deadline, options: RequestOptions
    ) -> AgentResult:
        """The call, tried again after a refusal that did nothing (same request id)."""
        assert self.requester is not None
        attempts = 0
        while True:
            attempts += 1
            try:
                return await self._stream(task, path, deadline, options)
            except RequestTimeoutError as exc:
                if exc.worker_lost:  # what the callee started runs for nobody
                    await self._cancel_below(path)
                if not (exc.retryable and attempts <= self.retries):
                    raise
            except SwitchboardError as exc:
                if not (exc.retryable and attempts <= self.retries):
                    raise
            pause = min(0.05 * 2 ** (attempts - 1), 1.0)
            if deadline.remaining() <= pause + 0.05:
                raise RequestTimeoutError(
                    f"The call {path} found no worker before its deadline.",
                    subject=self.requester.subjects.agent(task.agent),
                    correlation_id=task.correlation_id,
                )
            await asyncio.sleep(pause)

    async def _stream(
        self, task: AgentTask, path: CallPath, deadline: Deadline, options: RequestOptions
    ) -> AgentResult:
        assert self.requester is not None
        subject = self.requester.subjects.agent(task.agent)
        if not self.followed:  # nobody follows: the callee's progress would go to nobody
            return await self.requester.call(
                subject,
                task,
                AgentResult,
                correlation_id=task.correlation_id,
                deadline=deadline,
                options=options,
            )
        async with self.requester.stream(
            subject,
            task,
            AgentResult,
            correlation_id=task.correlation_id,
            deadline=deadline,
            options=options,
        ) as replies:
            async for item in replies:
                match item:
                    case AgentResult():
                        return item
                    case CallStartedEvent() | CallFinishedEvent():
                        # A call below ours: pass it up, under our step.
                        if _below(item.detail.path, path):
                            item.step = self.path.step
                            await self._relay(encode_event(item))
                    case TokenEvent():
                        # A callee's streamed answer (its detail names its call path): up,
                        # under our step, so the user sees which nested call writes.
                        item.step = self.path.step
                        await self._relay(encode_event(item))
                    case _:
                        pass  # the callee's own progress is its caller's business only
        raise RemoteError(
            ErrorCode.INTERNAL,
            f"The call {path} ended without an answer.",
            subject=subject,
            correlation_id=task.correlation_id,
        )

    async def _cancel_below(self, path: CallPath) -> None:
        """The callee's process went silent: stop what it started (its callees, theirs)."""
        assert self.requester is not None
        with contextlib.suppress(SwitchboardError):  # best effort: their deadlines still hold
            await self.requester.publish(
                self.requester.subjects.cancel(self.task.correlation_id),
                b"",
                correlation_id=self.task.correlation_id,
                headers={headers.CANCEL_PATH: str(path)},
            )

    async def _emit(
        self,
        kind: type[CallStartedEvent] | type[CallFinishedEvent],
        path: CallPath,
        detail: CallDetail,
    ) -> None:
        event = kind(
            correlation_id=self.task.correlation_id,
            step=path.step,
            agent=path.agent,
            detail=detail,
            ts=event_time(),
        )
        await self._relay(encode_event(event))

    async def _relay(self, data: bytes) -> None:
        try:
            await self._progress(data)
        except SwitchboardError as exc:  # progress is best effort; the call goes on
            log.debug("call event not sent", error=str(exc))

    def __repr__(self) -> str:
        return f"<Caller {self.path} {self.budget!r} may call {sorted(self.declared)}>"


def _refusal(exc: SwitchboardError, path: CallPath) -> SwitchboardError:
    """A callee's refusal (a remote ``call_*`` code) as its typed error; others as they are."""
    if isinstance(exc, RemoteError) and exc.code in _REFUSALS:
        return _REFUSALS[exc.code](str(exc), path=str(path))
    return exc


def _below(reported: str, path: CallPath) -> bool:
    """Whether a callee's event is about a call under ``path`` (anything else is dropped)."""
    try:
        return CallPath.parse(reported).under(str(path))
    except DecodeError:
        return False


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
