"""AgentWorker: serves one agent on ``ai.agents.<name>`` and answers the NATS service API."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import msgspec
import structlog
from nats.aio.client import Client as NATS

from switchboard.orchestrator.core import (
    DEFAULT_MAX_CALL_DEPTH,
    DEFAULT_MAX_CALLS,
    DEFAULT_MAX_INFLIGHT_BYTES,
    ROLE_AGENT,
    ROLE_KEY,
    AgentError,
    AgentResult,
    AgentTask,
    CallBudget,
    CallPath,
    DecodeError,
    Endpoint,
    ErrorInfo,
    Request,
    Requester,
    ServiceResponder,
    Subjects,
    agent_metadata,
    encode,
    headers,
    parse_budget,
    stop_in_order,
)
from switchboard.orchestrator.llm.base import LLM
from switchboard.orchestrator.llm.local import LocalLLM

from .calls import Caller
from .sdk import Agent, TaskContext

__all__ = ["AgentWorker"]

log = structlog.get_logger("switchboard.agent")


class AgentWorker:
    """Runs an :class:`Agent`: many tasks at once (up to ``max_concurrency``), each to its deadline.

    Tasks whose deadline passed are dropped; progress goes to the requester's
    inbox; the result (or the error) is an :class:`AgentResult`.

    An agent that declares ``calls`` needs ``requester`` (the process's own, started
    before the worker) for ``ctx.call``. Every task's call path is checked when it
    arrives (``max_call_depth``, no cycle: a forged header is refused here too), and its
    budget of calls is the lease its caller sent, never more than ``max_calls``.
    """

    def __init__(
        self,
        nc: NATS,
        agent: Agent,
        *,
        subjects: Subjects | None = None,
        llm: LLM | None = None,
        max_concurrency: int = 64,
        max_backlog: int = 1_000,
        max_payload: int = 1024 * 1024,
        max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES,
        default_timeout: float = 60.0,
        requester: Requester | None = None,
        max_call_depth: int = DEFAULT_MAX_CALL_DEPTH,
        max_calls: int = DEFAULT_MAX_CALLS,
        call_heartbeat: float = 1.0,
        call_accept_timeout: float | None = 5.0,
    ) -> None:
        self.agent = agent
        self.requester = requester
        self.max_call_depth = max_call_depth
        self.max_calls = max_calls
        self.call_heartbeat = call_heartbeat
        self.call_accept_timeout = call_accept_timeout
        self.subjects = subjects or Subjects()
        self.llm: LLM = llm or LocalLLM()
        self.endpoint = Endpoint(
            nc,
            subject=self.subjects.agent(agent.name),
            queue=self.subjects.agent_queue(agent.name),
            handler=self._handle,
            name=agent.name,
            max_concurrency=max_concurrency,
            max_backlog=max_backlog,
            max_payload=max_payload,
            max_inflight_bytes=max_inflight_bytes,
            default_timeout=default_timeout,
            subjects=self.subjects,
            error_body=self._error_body,
            description=agent.description,
            metadata=agent_metadata(
                keywords=agent.keywords, patterns=agent.patterns, input_hints=agent.input_hints
            ),
        )
        self.responder = ServiceResponder(
            nc,
            name=agent.name,
            version=agent.version,
            description=agent.description,
            endpoints=[self.endpoint],
            metadata={ROLE_KEY: ROLE_AGENT},
        )

    @property
    def running(self) -> bool:
        return self.endpoint.running

    async def start(self) -> None:
        """Serve the subject first, then advertise it (so discovery never lies)."""
        await self.endpoint.start()
        await self.responder.start()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop advertising, then finish in-flight tasks within ``grace``.

        Cancelled half-way, it still stops serving, at once, then re-raises.
        """
        await stop_in_order(grace, self.responder.stop, self.endpoint.stop)

    async def _handle(self, request: Request) -> bytes:
        task = request.decode(AgentTask)
        started = time.perf_counter()
        called = headers.CALL_PATH in request.headers
        caller = self._caller(task, request) if called or self.agent.calls else None
        context = TaskContext(
            task=task,
            deadline=request.deadline,
            llm=self.llm,
            log=log,  # the log context (correlation id, endpoint) is bound per task already
            _progress=request.progress,
            _caller=caller,
            call_path=request.headers.get(headers.CALL_PATH),
        )
        output: Any = await self.agent.handler(task, context)
        result = AgentResult(
            correlation_id=task.correlation_id,
            task_id=task.task_id,
            ok=True,
            output=output,
            usage=context.usage,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        leased = request.headers.get(headers.CALL_BUDGET)
        if leased is not None:  # what this task did not use goes back to whoever leased it
            result.unused_calls = _unused(leased, caller)
        try:
            return encode(result)
        except (TypeError, msgspec.EncodeError) as exc:
            raise AgentError(
                f"The {self.agent.name} agent returned a {type(output).__name__}, which cannot be "
                "sent as JSON."
            ) from exc

    def _caller(self, task: AgentTask, request: Request) -> Caller:
        """The calls this task may make, from its call path and budget headers.

        Raises:
            DecodeError: the call path is not one, or does not end at this agent.
            CallCycleError, CallDepthError: the path loops or is too deep.
        """
        raw = request.headers.get(headers.CALL_PATH)
        if raw is None:
            path = CallPath.root(task.task_id, self.agent.name)
        else:
            path = CallPath.parse(raw)
            if path.agent != self.agent.name or task.agent != self.agent.name:
                raise DecodeError(
                    f"The call path {raw!r} does not end at the {self.agent.name} agent."
                )
            path.check(max_depth=self.max_call_depth)
        budget = parse_budget(request.headers.get(headers.CALL_BUDGET), most=self.max_calls)
        return Caller(
            self.requester,
            task,
            path=path,
            budget=CallBudget(budget),
            declared=self.agent.calls,
            max_depth=self.max_call_depth,
            progress=request.progress,
            followed=request.wants_progress,
            heartbeat=self.call_heartbeat,
            accept_timeout=self.call_accept_timeout,
        )

    def _error_body(self, request: Request, error: ErrorInfo) -> bytes:
        task_id = ""
        with contextlib.suppress(Exception):  # the payload may be anything at all here
            task_id = msgspec.json.decode(request.data, type=_TaskId).task_id
        return encode(
            AgentResult(
                correlation_id=request.correlation_id or "",
                task_id=task_id,
                ok=False,
                error=error,
            )
        )

    def __repr__(self) -> str:
        return f"<AgentWorker {self.agent.name} {self.endpoint!r}>"


def _unused(leased: str, caller: Caller | None) -> int:
    """The calls of a lease a task did not use: all of them without a caller; else what its
    caller has left, plus any part of the lease over this worker's own ``max_calls``."""
    lease = parse_budget(leased, most=_ANY)
    if caller is None:
        return lease
    return caller.budget.left + max(0, lease - caller.budget.total)


#: No bound: a lease read only to be given back.
_ANY = 10**9


class _TaskId(msgspec.Struct):
    task_id: str = ""
