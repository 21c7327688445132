"""Offline re-planning: rules, each with a reason a user can read in the ``replanned`` event.

After a round, :func:`adapt` looks at the steps of that round that failed
because their input was unclear (the agent said ``bad_request`` or
``agent_error``; a timeout or a missing agent is the executor's to retry):

1. **Fill from another step.** A failed step whose instruction refers to
   another's output ("shout the result") and that had none is run again,
   depending on the last step of the conversation that did answer: its output
   is the input.
2. **Another agent.** Otherwise the step runs again on the next agent whose
   advertised hints match its instruction, if one that was not tried yet does.

Steps skipped because a failed step was needed run again after its retry. A
round with nothing to retry is the last one, so a conversation where every
step answered costs one look at its results, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..core.catalog import AgentInfo
from ..core.conversation import Plan, PlanStep, StepResult
from ..core.errors import ErrorCode
from .planner import LocalPlanner, refers_back

__all__ = ["UNCLEAR_INPUT", "Adaptation", "adapt"]

#: Error codes that mean "the agent could not use this input".
UNCLEAR_INPUT = frozenset({ErrorCode.BAD_REQUEST.value, ErrorCode.AGENT_ERROR.value})


@dataclass(frozen=True, slots=True)
class Adaptation:
    """The next round's plan, why, and which earlier step each new step runs again."""

    plan: Plan
    reason: str
    #: new step id -> the id of the failed or skipped step it runs again
    retries: dict[str, str]


def adapt(
    planner: LocalPlanner,
    steps: Sequence[PlanStep],
    results: Sequence[StepResult],
    agents: Mapping[str, AgentInfo],
    *,
    round_: int,
    max_steps: int,
) -> Adaptation | None:
    """The next round (round ``round_``) for a conversation whose steps so far are ``steps``
    with ``results`` (same order), and the reason; None when no rule applies.

    Only the steps of the latest round are looked at; ids of the new steps are
    ``r<round>s<n>``.
    """
    if all(r.status == "ok" for r in results):
        return None  # the common case: nothing to retry, at a glance
    by_id = {r.id: r for r in results}
    last_round = max((r.round for r in results), default=1)
    latest = [s for s in steps if by_id[s.id].round == last_round]
    answered = [s for s in steps if by_id[s.id].status == "ok"]
    new_steps: list[PlanStep] = []
    reasons: list[str] = []
    renamed: dict[str, str] = {}  # failed step id -> the id of its retry
    for step in latest:
        result = by_id[step.id]
        if result.status != "failed" or result.error is None:
            continue
        if result.error.code not in UNCLEAR_INPUT or len(new_steps) >= max_steps:
            continue
        new_id = f"r{round_}s{len(new_steps) + 1}"
        source = _fill_from(step, answered)
        if source is not None:
            new_steps.append(
                PlanStep(
                    id=new_id,
                    agent=step.agent,
                    instruction=step.instruction,
                    depends_on=[source.id],
                    required=step.required,
                )
            )
            reasons.append(
                f"Step {step.id} ({step.agent}) needed another step's output and had none: "
                f"{new_id} runs it again with the output of {source.id} ({source.agent})."
            )
            renamed[step.id] = new_id
            continue
        tried = {s.agent for s in steps if s.instruction == step.instruction}
        others = [a for a in planner.candidates(step.instruction, agents) if a not in tried]
        other = others[0] if others else None
        if other is None:
            continue
        new_steps.append(
            PlanStep(
                id=new_id,
                agent=other,
                instruction=step.instruction,
                depends_on=list(step.depends_on),
                required=step.required,
            )
        )
        reasons.append(
            f"Step {step.id} ({step.agent}) could not use its input "
            f"({result.error.code}): {new_id} asks {other}, which can also do it."
        )
        renamed[step.id] = new_id
    if not new_steps:
        return None
    for step in latest:  # what was skipped for a step now retried runs after the retry
        if by_id[step.id].status != "skipped" or len(new_steps) >= max_steps:
            continue
        if not any(d in renamed for d in step.depends_on):
            continue
        if any(d not in renamed and by_id[d].status != "ok" for d in step.depends_on):
            continue
        new_id = f"r{round_}s{len(new_steps) + 1}"
        new_steps.append(
            PlanStep(
                id=new_id,
                agent=step.agent,
                instruction=step.instruction,
                depends_on=[renamed.get(d, d) for d in step.depends_on],
                required=step.required,
            )
        )
        renamed[step.id] = new_id
    return Adaptation(
        Plan(steps=new_steps, source="local"),
        " ".join(reasons),
        {new: old for old, new in renamed.items()},
    )


def _fill_from(step: PlanStep, answered: Sequence[PlanStep]) -> PlanStep | None:
    """The step whose output ``step`` should get: the last other one that answered, when
    ``step`` refers back and depends on nothing."""
    if step.depends_on or not refers_back(step.instruction):
        return None
    others = [s for s in answered if s.id != step.id]
    return others[-1] if others else None
