"""The executor: runs a plan's steps in parallel as their dependencies finish.

Each step is one agent request through the correlation tracker, with
heartbeats (so a lost or dead worker is noticed in seconds), under
``min(its timeout, the conversation's time left)``. Transient failures
(no responders, overloaded, shutting down, not accepted in time: a frozen
worker still holds its subscription) are retried with backoff while time
remains; the cancel notice of the attempt given up withdraws it. A failed
required step skips everything that depends on it; an optional step's failure
does not block its dependents, which get ``None`` for its output. Steps run
in a task group (a step with nothing beside it runs inline, without a task):
cancelling the conversation cancels them all and waits for them, and their
cancelled waiters tell the agents to stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import structlog

from ..core import headers as h
from ..core import tracing
from ..core.calls import CallBudget
from ..core.conversation import Plan, PlanStep, StepResult
from ..core.deadline import Deadline
from ..core.envelopes import AgentResult, AgentTask, ErrorInfo
from ..core.errors import RequestError, RequestTimeoutError, SwitchboardError
from ..core.options import RequestOptions, new_request_id
from ..core.progress import (
    CallFinishedEvent,
    CallStartedEvent,
    StepFinishedDetail,
    StepStartedDetail,
    TokenEvent,
)
from ..core.requester import Requester
from ..core.sizes import preview
from ..core.subjects import Subjects
from ..metrics import STEP_RETRIES, STEPS
from .events import EventSink
from .plan import dependents

__all__ = ["Executor"]

log = structlog.get_logger("switchboard.executor")


class Executor:
    """Runs plans against agents over NATS (stateless: one instance serves every conversation)."""

    def __init__(
        self,
        requester: Requester,
        *,
        subjects: Subjects | None = None,
        step_timeout: float = 30.0,
        retries: int = 2,
        heartbeat: float = 1.0,
        accept_timeout: float = 5.0,
        max_calls: int | None = None,
    ) -> None:
        self.requester = requester
        #: The conversation's budget of agent-to-agent calls, shared out to its steps
        #: (``Switchboard-Call-Budget``); None: each agent's own ``max_calls`` per step.
        self.max_calls = max_calls
        self.subjects = subjects or requester.subjects
        self.step_timeout = step_timeout
        self.retries = retries
        self.heartbeat = heartbeat
        self.accept_timeout = accept_timeout

    async def run(
        self,
        plan: Plan,
        *,
        correlation_id: str,
        user_id: str | None,
        deadline: Deadline,
        events: EventSink,
        prior: Mapping[str, Any] | None = None,
        calls: CallBudget | None = None,
    ) -> list[StepResult]:
        """Run ``plan``; returns one StepResult per step, in plan order.

        ``prior``: the outputs of steps that ran before this plan (earlier rounds), by id;
        a step may depend on them and gets them as inputs. ``calls``: the conversation's
        budget of agent-to-agent calls when it spans several runs (its rounds: one budget
        for all of them); None: a new one of ``max_calls``.

        Steps run in an ``asyncio.TaskGroup``: cancelling the run (its deadline, the
        conversation cancelled) cancels every running step and waits for them all before
        the ``CancelledError`` comes out; nothing outlives the run.

        Raises:
            ExceptionGroup: a step crashed (a bug; a failed agent is a failed StepResult):
                every such crash, none lost, after the other steps were cancelled.
        """
        state = _RunState(plan, prior)
        if calls is None:
            calls = self.call_budget()

        async def run_step(step: PlanStep) -> None:
            lease = 0
            if calls is not None:  # the steps still to start share what is left
                lease = calls.share(len(state.waiting) + state.starting)
                state.starting -= 1
            result = await self._step(
                step,
                state.inputs(step),
                correlation_id=correlation_id,
                user_id=user_id,
                deadline=deadline,
                events=events,
                calls=calls,
                lease=lease,
            )
            await self._settle(state, step.id, result, events)

        running: set[asyncio.Task[None]] = set()
        async with asyncio.TaskGroup() as group:
            while True:
                ready = state.take_ready()
                state.starting += len(ready)
                if len(ready) == 1 and not running:
                    # Nothing to run beside it (a one-step plan, a chain): no task, no wait.
                    await run_step(ready[0])
                    continue
                running.update(group.create_task(run_step(step)) for step in ready)
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                running -= done
        results = state.results
        for step in state.waiting.values():  # unreachable (a dependency was skipped)
            results[step.id] = self._skipped(step, None)
        for result in results.values():
            STEPS.labels(result.agent, result.status).inc()
        return [results[step.id] for step in plan.steps]

    async def _settle(
        self, state: _RunState, step_id: str, result: StepResult, events: EventSink
    ) -> None:
        """Record a finished step; a failed required step skips everything that needs it."""
        state.results[step_id] = result
        if result.status == "ok":
            state.outputs[step_id] = result.output
            return
        if not state.steps[step_id].required:
            return
        # Taken out of the plan before the first event is sent: while one is sent, the run
        # may look for ready steps, and must not start one of these.
        skipped = [
            self._skipped(state.waiting.pop(i), step_id)
            for i in sorted(dependents(state.plan, step_id))
            if i in state.waiting
        ]
        for skip in skipped:
            state.results[skip.id] = skip
        for skip in skipped:
            await events.emit(
                "step_failed",
                step=skip.id,
                agent=skip.agent,
                detail=ErrorInfo("skipped", skip.error.message if skip.error else ""),
            )

    @tracing.traced("step", lambda _self, step, *_a, **_k: _step_attributes(step))
    async def _step(
        self,
        step: PlanStep,
        inputs: Mapping[str, Any],
        *,
        correlation_id: str,
        user_id: str | None,
        deadline: Deadline,
        events: EventSink,
        calls: CallBudget | None = None,
        lease: int = 0,
    ) -> StepResult:
        step_deadline = deadline.earlier(step.timeout_s or self.step_timeout)
        task = AgentTask(
            correlation_id=correlation_id,
            task_id=step.id,
            agent=step.agent,
            instruction=step.instruction,
            inputs=dict(inputs),
            user_id=user_id,
        )
        subject = self.subjects.agent(step.agent)
        started = time.perf_counter()
        attempts = 0
        # One id for every attempt of this step: an agent that has the first attempt in
        # hand (or answered it lately) attaches a retry to it instead of running it twice.
        options = RequestOptions(
            heartbeat=self.heartbeat,
            accept_timeout=self.accept_timeout,
            request_id=new_request_id(),
            headers=None if calls is None else {h.CALL_BUDGET: str(lease)},
        )
        await events.emit(
            "step_started",
            step=step.id,
            agent=step.agent,
            detail=StepStartedDetail(instruction=step.instruction),
        )
        while True:
            attempts += 1
            try:
                with tracing.retry_span(attempts, **{"switchboard.step": step.id}):
                    result = await self._call(
                        subject, task, correlation_id, step_deadline, step, events, options
                    )
            except SwitchboardError as exc:
                if isinstance(exc, RequestTimeoutError) and exc.worker_lost:
                    await self._cancel_calls(correlation_id, step)
                backoff = min(0.05 * 2 ** (attempts - 1), 1.0)
                if (
                    exc.retryable
                    and attempts <= self.retries
                    and step_deadline.remaining() > backoff + 0.05
                ):
                    STEP_RETRIES.labels(step.agent).inc()
                    log.info(
                        "step retried",
                        step=step.id,
                        agent=step.agent,
                        code=exc.code.value,
                        attempt=attempts,
                    )
                    await asyncio.sleep(backoff)
                    continue
                error = ErrorInfo(exc.code.value, str(exc))
                await events.emit("step_failed", step=step.id, agent=step.agent, detail=error)
                return StepResult(
                    id=step.id,
                    agent=step.agent,
                    status="failed",
                    required=step.required,
                    error=error,
                    attempts=attempts,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )
            if calls is not None:  # what the step's calls did not use is the next steps'
                calls.give_back(lease, result.unused_calls or 0)
            await events.emit(
                "step_finished",
                step=step.id,
                agent=step.agent,
                detail=_finished_detail(result.output),
            )
            return StepResult(
                id=step.id,
                agent=step.agent,
                status="ok",
                required=step.required,
                output=result.output,
                attempts=attempts,
                usage=result.usage,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )

    async def _call(
        self,
        subject: str,
        task: AgentTask,
        correlation_id: str,
        deadline: Deadline,
        step: PlanStep,
        events: EventSink,
        options: RequestOptions,
    ) -> AgentResult:
        if not events.listening:  # progress only to whoever asked for it: nobody did
            return await self.requester.call(
                subject,
                task,
                AgentResult,
                correlation_id=correlation_id,
                deadline=deadline,
                options=options,
            )
        async with self.requester.stream(
            subject,
            task,
            AgentResult,
            correlation_id=correlation_id,
            deadline=deadline,
            options=options,
        ) as replies:
            async for item in replies:
                match item:
                    case AgentResult():
                        return item
                    case TokenEvent():  # a streamed answer's text, passed on as this step's
                        await events.emit(
                            "token", step=step.id, agent=step.agent, detail=item.detail
                        )
                    case CallStartedEvent() | CallFinishedEvent():
                        # The agent called an agent (ctx.call): shown under this step, if
                        # the call is one of this step's (its path starts with it).
                        if item.detail.path.startswith(f"{step.id}>{step.agent}>"):
                            await events.emit(
                                item.kind, step=step.id, agent=item.agent, detail=item.detail
                            )
                    case _:  # the agent's progress, passed on as this step's
                        await events.emit(
                            "step_progress", step=step.id, agent=step.agent, detail=item.detail
                        )
        raise RequestError(  # the stream ended without a final reply: cannot happen
            f"The {step.agent} agent closed step {step.id} without an answer.",
            subject=subject,
            correlation_id=correlation_id,
        )

    def call_budget(self) -> CallBudget | None:
        """A conversation's budget of agent-to-agent calls (None: no conversation-wide one)."""
        return None if self.max_calls is None else CallBudget(self.max_calls)

    async def _cancel_calls(self, correlation_id: str, step: PlanStep) -> None:
        """The step's agent went silent (its process died): its calls to other agents, and
        theirs, would run on for nobody. One subtree cancel notice stops them all."""
        try:
            await self.requester.publish(
                self.subjects.cancel(correlation_id),
                b"",
                correlation_id=correlation_id,
                headers={h.CANCEL_PATH: f"{step.id}>{step.agent}"},
            )
        except SwitchboardError as exc:  # best effort: their deadlines still hold
            log.debug("subtree cancel not sent", step=step.id, error=str(exc))

    @staticmethod
    def _skipped(step: PlanStep, because: str | None) -> StepResult:
        reason = (
            f"Skipped because step {because} failed."
            if because
            else "Skipped because a step it needs did not run."
        )
        return StepResult(
            id=step.id,
            agent=step.agent,
            status="skipped",
            required=step.required,
            error=ErrorInfo("agent_error", reason),
        )


class _RunState:
    """One run of a plan: the steps still waiting, the results so far, the outputs."""

    __slots__ = ("outputs", "plan", "prior", "results", "starting", "steps", "waiting")

    def __init__(self, plan: Plan, prior: Mapping[str, Any] | None = None) -> None:
        self.plan = plan
        self.steps: Mapping[str, PlanStep] = {step.id: step for step in plan.steps}
        self.waiting: dict[str, PlanStep] = dict(self.steps)
        self.results: dict[str, StepResult] = {}
        self.prior: Mapping[str, Any] = prior or _NOTHING
        self.outputs: dict[str, Any] = dict(prior) if prior else {}
        #: Steps taken from ``waiting`` whose run has not begun yet (they share the calls).
        self.starting = 0

    def take_ready(self) -> list[PlanStep]:
        """The waiting steps whose dependencies have all finished, no longer waiting."""
        results, prior = self.results, self.prior
        ready = [
            s
            for s in self.waiting.values()
            if all(d in results or d in prior for d in s.depends_on)
        ]
        for step in ready:
            del self.waiting[step.id]
        return ready

    def inputs(self, step: PlanStep) -> dict[str, Any]:
        """What ``step`` gets from its dependencies (None for a failed optional one)."""
        return {d: self.outputs.get(d) for d in step.depends_on}


#: No earlier rounds' outputs (shared: a plan's first round allocates nothing for them).
_NOTHING: Mapping[str, Any] = MappingProxyType({})


def _step_attributes(step: PlanStep) -> dict[str, Any]:
    return {
        "switchboard.step": step.id,
        "switchboard.agent": step.agent,
        "switchboard.required": step.required,
    }


def _finished_detail(output: object) -> StepFinishedDetail:
    """The ``step_finished`` detail: the output, or a preview of a large one (the reply
    carries it; see ``core.sizes``)."""
    shown = preview(output)
    if not shown.truncated:
        return StepFinishedDetail(output=output)
    return StepFinishedDetail(output=shown.value, truncated=True, size=shown.size)
