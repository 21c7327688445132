"""The executor: runs a plan's steps in parallel as their dependencies finish.

Each step is one agent request through the correlation tracker, with
heartbeats (so a lost or dead worker is noticed in seconds), under
``min(its timeout, the conversation's time left)``. Transient failures
(no responders, overloaded, shutting down, not accepted in time: a frozen
worker still holds its subscription) are retried with backoff while time
remains; the cancel notice of the attempt given up withdraws it. A failed
required step skips everything that depends on it; an optional step's failure
does not block its dependents, which get ``None`` for its output. Steps are
owned tasks: cancelling the conversation cancels them, and their cancelled
waiters tell the agents to stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import structlog

from ..core.conversation import Plan, PlanStep, StepResult
from ..core.deadline import Deadline
from ..core.envelopes import AgentResult, AgentTask, ErrorInfo
from ..core.errors import RequestError, SwitchboardError
from ..core.options import RequestOptions
from ..core.progress import StepFinishedDetail, StepStartedDetail
from ..core.requester import Requester
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
    ) -> None:
        self.requester = requester
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
    ) -> list[StepResult]:
        """Run ``plan``; returns one StepResult per step, in plan order."""
        steps = {step.id: step for step in plan.steps}
        waiting = dict(steps)
        results: dict[str, StepResult] = {}
        outputs: dict[str, Any] = {}
        running: dict[asyncio.Task[StepResult], str] = {}
        try:
            while waiting or running:
                ready = [i for i, s in waiting.items() if all(d in results for d in s.depends_on)]
                if len(ready) == 1 and not running:
                    # Nothing to run beside it (a one-step plan, a chain): no task, no wait.
                    step = waiting.pop(ready[0])
                    inputs = {d: outputs.get(d) for d in step.depends_on}
                    result = await self._step(
                        step,
                        inputs,
                        correlation_id=correlation_id,
                        user_id=user_id,
                        deadline=deadline,
                        events=events,
                    )
                    await self._settle(
                        plan, steps, step.id, result, waiting, results, outputs, events
                    )
                    continue
                for step_id in ready:
                    step = waiting.pop(step_id)
                    inputs = {d: outputs.get(d) for d in step.depends_on}
                    task = asyncio.create_task(
                        self._step(
                            step,
                            inputs,
                            correlation_id=correlation_id,
                            user_id=user_id,
                            deadline=deadline,
                            events=events,
                        )
                    )
                    running[task] = step_id
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    step_id = running.pop(task)
                    await self._settle(
                        plan, steps, step_id, task.result(), waiting, results, outputs, events
                    )
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        for step_id in waiting:  # unreachable (a dependency was skipped)
            results[step_id] = self._skipped(waiting[step_id], None)
        for result in results.values():
            STEPS.labels(result.agent, result.status).inc()
        return [results[step.id] for step in plan.steps]

    async def _settle(
        self,
        plan: Plan,
        steps: Mapping[str, PlanStep],
        step_id: str,
        result: StepResult,
        waiting: dict[str, PlanStep],
        results: dict[str, StepResult],
        outputs: dict[str, Any],
        events: EventSink,
    ) -> None:
        """Record a finished step; a failed required step skips everything that needs it."""
        results[step_id] = result
        if result.status == "ok":
            outputs[step_id] = result.output
            return
        if not steps[step_id].required:
            return
        for skipped in sorted(dependents(plan, step_id)):
            if skipped in waiting:
                skip = self._skipped(waiting.pop(skipped), step_id)
                results[skipped] = skip
                await events.emit(
                    "step_failed",
                    step=skipped,
                    agent=skip.agent,
                    detail={"code": "skipped", "message": skip.error.message if skip.error else ""},
                )

    async def _step(
        self,
        step: PlanStep,
        inputs: Mapping[str, Any],
        *,
        correlation_id: str,
        user_id: str | None,
        deadline: Deadline,
        events: EventSink,
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
        await events.emit(
            "step_started",
            step=step.id,
            agent=step.agent,
            detail=StepStartedDetail(instruction=step.instruction),
        )
        while True:
            attempts += 1
            try:
                result = await self._call(
                    subject, task, correlation_id, step_deadline, step, events
                )
            except SwitchboardError as exc:
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
            await events.emit(
                "step_finished",
                step=step.id,
                agent=step.agent,
                detail=StepFinishedDetail(output=result.output),
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
    ) -> AgentResult:
        options = RequestOptions(heartbeat=self.heartbeat, accept_timeout=self.accept_timeout)
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
                    case _:  # the agent's progress, passed on as this step's
                        await events.emit(
                            "step_progress", step=step.id, agent=step.agent, detail=item.detail
                        )
        raise RequestError(  # the stream ended without a final reply: cannot happen
            f"The {step.agent} agent closed step {step.id} without an answer.",
            subject=subject,
            correlation_id=correlation_id,
        )

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
