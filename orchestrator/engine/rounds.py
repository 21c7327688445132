"""Rounds: run the plan, look at what the agents answered, and plan again while it helps.

Round 1 is the plan made before any agent answered. After each round the
engine may plan another, with the results so far: with a language model, the
tool-calling loop (``engine.tools``); offline, the rules of ``engine.adapt``.
A new round's steps may depend on steps of earlier rounds (the executor gets
their outputs as ``prior``), and every new round is announced with a
``replanned`` event that says why. Steps carry their round into the reply.

Another round starts only within :class:`RoundLimits`: rounds, steps of all
rounds together, the LLM tokens the conversation spent, and the time left.
When one is reached, the model is asked for its answer with tools off, so a
model that never stops calling tools stops at the limit all the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog

from ..core.calls import CallBudget
from ..core.catalog import AgentInfo
from ..core.conversation import ConversationTurn, Plan, PlanStep, StepResult
from ..core.deadline import Deadline
from ..core.envelopes import Usage
from ..core.errors import ConversationCancelledError, ErrorCode, PlanError
from ..core.progress import ReplannedDetail
from ..llm.base import ToolCallingLLM
from .adapt import adapt
from .aggregator import compose, outputs_answer
from .events import EventSink
from .executor import Executor
from .plan import validate_plan
from .planner import LocalPlanner, split_clauses
from .tools import ToolLoop

__all__ = ["RoundLimits", "Rounds", "RoundsOutcome"]

log = structlog.get_logger("switchboard.rounds")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundLimits:
    """When a conversation must stop re-planning and answer."""

    #: Most rounds (1: plan once, never again).
    max_rounds: int = 3
    #: Most steps of all rounds together.
    max_steps: int = 32
    #: Most LLM tokens the conversation may have spent for another round to start.
    max_tokens: int = 50_000
    #: Fewest seconds that must be left for another round to start.
    min_time: float = 1.0


@dataclass(slots=True)
class RoundsOutcome:
    """Every round's steps (one plan) and results, and the model's answer if it wrote one."""

    plan: Plan
    results: list[StepResult]
    rounds: int = 1
    usage: Usage = field(default_factory=Usage)
    #: The answer written in the tool-calling loop (the aggregator makes no call), or None.
    draft: str | None = None
    #: Steps that failed (or were skipped) and then ran again, successfully, in a later round.
    recovered: set[str] = field(default_factory=set)

    @property
    def partial(self) -> bool:
        """Whether a required step failed and was not run again successfully."""
        return any(
            r.status != "ok" and r.required and r.id not in self.recovered for r in self.results
        )


class Rounds:
    """Runs a conversation's rounds (stateless: one instance serves every conversation)."""

    def __init__(
        self,
        executor: Executor,
        local_planner: LocalPlanner,
        *,
        llm: ToolCallingLLM | None,
        limits: RoundLimits,
        max_plan_steps: int,
    ) -> None:
        self.executor = executor
        self.local_planner = local_planner
        self.llm = llm
        self.limits = limits
        self.max_plan_steps = max_plan_steps

    async def run(
        self,
        plan: Plan,
        *,
        message: str,
        correlation_id: str,
        user_id: str | None,
        agents: Mapping[str, AgentInfo],
        history: Sequence[ConversationTurn],
        deadline: Deadline,
        events: EventSink,
        spent: Usage | None = None,
    ) -> RoundsOutcome:
        """Run ``plan`` (round 1, validated and announced already), then any further rounds.

        ``spent``: the LLM usage of making ``plan`` (it counts toward the token limit).

        Raises:
            ConversationCancelledError: the conversation was cancelled while a round ran.
        """
        calls = self.executor.call_budget()  # one budget of calls for every round
        results = await self._run_round(
            plan, 1, correlation_id, user_id, deadline, events, {}, calls
        )
        outcome = RoundsOutcome(plan=plan, results=results)
        # The model reads the results only of a plan it made, and only when they may not
        # answer yet: a step failed, part of the request has no step, or outputs a model
        # wrote need stitching. Otherwise the outputs are the answer, and asking the model
        # again would be a call the conversation does not need.
        loop = (
            ToolLoop(self.llm, agents, message, history=history)
            if self.llm is not None
            and plan.steps
            and plan.source == "llm"
            and not answered(plan, results, message)
            else None
        )
        if loop is None and (self.limits.max_rounds <= 1 or all(r.status == "ok" for r in results)):
            return outcome  # offline, nothing to retry: one round, at no further cost
        steps: list[PlanStep] = list(plan.steps)
        outcome.results = list(results)
        current = plan
        retried: dict[str, str] = {}  # step id -> the id of the step it ran again
        while True:
            used = outcome.usage + spent if spent is not None else outcome.usage
            room = self._room(outcome.rounds, len(steps), used, deadline)
            if loop is not None:
                loop.observe(current, results)
                turn = await loop.next(
                    outcome.rounds,
                    final=room <= 0,
                    max_steps=min(room, self.max_plan_steps),
                    deadline=deadline,
                )
                outcome.usage = outcome.usage + turn.usage
                if turn.plan is None:
                    outcome.draft = turn.draft or compose(
                        Plan(steps=steps, source=plan.source), outcome.results
                    )
                    break
                following, reason, retries = turn.plan, turn.reason, {}
            else:
                if room <= 0:
                    break
                adapted = adapt(
                    self.local_planner,
                    steps,
                    outcome.results,
                    agents,
                    round_=outcome.rounds + 1,
                    max_steps=min(room, self.max_plan_steps),
                )
                if adapted is None:
                    break
                following, reason, retries = adapted.plan, adapted.reason, adapted.retries
            try:
                validate_plan(
                    following, agents, max_steps=self.max_plan_steps, earlier=[s.id for s in steps]
                )
            except PlanError as exc:  # cannot happen (both planners check): answer with what ran
                log.warning("next round's plan refused; answering with what ran", error=str(exc))
                if loop is not None:
                    outcome.draft = compose(Plan(steps=steps, source=plan.source), outcome.results)
                break
            outcome.rounds += 1
            await events.emit(
                "replanned",
                detail=ReplannedDetail(round=outcome.rounds, reason=reason, plan=following),
            )
            prior = {r.id: r.output for r in outcome.results if r.status == "ok"}
            results = await self._run_round(
                following, outcome.rounds, correlation_id, user_id, deadline, events, prior, calls
            )
            steps.extend(following.steps)
            outcome.results.extend(results)
            retried.update(retries)
            for result in results:
                step_id = result.id
                while result.status == "ok" and step_id in retried:  # s1 <- r2s1 <- r3s1
                    step_id = retried[step_id]
                    outcome.recovered.add(step_id)
            current = following
        if outcome.rounds > 1:
            outcome.plan = Plan(steps=steps, source=plan.source)
        return outcome

    def _room(self, rounds: int, steps: int, usage: Usage, deadline: Deadline) -> int:
        """How many steps another round may have (0: none may start)."""
        limits = self.limits
        if (
            rounds >= limits.max_rounds
            or usage.total_tokens >= limits.max_tokens
            or deadline.remaining() < limits.min_time
        ):
            return 0
        return max(0, limits.max_steps - steps)

    async def _run_round(
        self,
        plan: Plan,
        round_: int,
        correlation_id: str,
        user_id: str | None,
        deadline: Deadline,
        events: EventSink,
        prior: Mapping[str, Any],
        calls: CallBudget | None,
    ) -> list[StepResult]:
        results = await self.executor.run(
            plan,
            correlation_id=correlation_id,
            user_id=user_id,
            deadline=deadline,
            events=events,
            prior=prior or None,
            calls=calls,
        )
        if any(r.error is not None and r.error.code == ErrorCode.CANCELLED for r in results):
            raise ConversationCancelledError(
                f"Conversation {correlation_id} was cancelled while it ran."
            )
        if round_ > 1:
            results = [msgspec.structs.replace(r, round=round_) for r in results]
        return results


def answered(plan: Plan, results: Sequence[StepResult], message: str) -> bool:
    """Round 1 answers the request as it is: every step ran, every clause of the request
    has a step, and the outputs need no model to stitch them (``outputs_answer``)."""
    return (
        all(r.status == "ok" for r in results)
        and len(plan.steps) >= len(split_clauses(message))
        and outputs_answer(plan, results)
    )
