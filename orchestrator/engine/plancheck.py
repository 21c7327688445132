"""Sanity checks on a language model's plan, against the rules' own plan.

A small model returns plans that validate and still make no sense: a step
for the wrong agent, an empty or garbage instruction, the same step twice, or
one catch-all step for the ``llm`` agent where a calculator would be exact.
Such a plan must never give a worse answer than the offline planner would,
so each LLM plan is checked step by step against the agents' advertised
hints (the ones the local planner plans with) and against the local plan:

- a step whose instruction has no word in it is dropped (``empty_instruction``);
- a step with no dependencies whose instruction shares no word with the message
  (``"jhkf"`` for "write a haiku about the sea") is dropped (``unrelated_instruction``):
  it gets no input but its instruction, so it could only answer something else;
- a step that repeats an earlier one (same agent, same instruction) is merged
  into it, its dependents rewired (``repeated_step``);
- a step is for the wrong agent when its agent advertises hints and none of
  them matches its instruction while another agent's do, or while none do and
  the general agent runs, which the rules give such a clause (``wrong_agent``);
- the plan misses an agent the rules chose by a pattern for some clause of
  the message (``missed_agent``): the rules see those clauses for sure.

Dropping and merging are repairs. A wrong agent or a missed agent makes the
plan unusable, and the local plan runs instead (counted as a fallback with
that reason), as do plans repaired down to nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..core.catalog import AgentInfo
from ..core.conversation import Plan, PlanStep
from .plan import GENERAL_AGENT

if TYPE_CHECKING:
    from .planner import LocalPlanner

#: Most seconds the agents' (untrusted) patterns may take on one plan's instructions.
PATTERN_BUDGET = 0.1

__all__ = ["PlanCheck", "check_llm_plan"]

_WORD = re.compile(r"\w", re.UNICODE)
_BLANK = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+", re.UNICODE)
_COMMON = frozenset(
    {
        "the", "and", "for", "with", "that", "this", "what", "how", "are", "was", "you",
        "your", "from", "then", "its", "into", "about", "please", "can", "could", "would",
        "tell", "give",
    }
)  # fmt: skip


class PlanCheck:
    """What :func:`check_llm_plan` found: the plan to run, or why the rules' plan runs."""

    __slots__ = ("plan", "reason", "unusable")

    def __init__(self, plan: Plan, reason: str = "", *, unusable: bool = False) -> None:
        self.plan = plan
        #: The first problem found ("" when none); a metric label.
        self.reason = reason
        #: True when the local plan must run instead.
        self.unusable = unusable

    def __repr__(self) -> str:
        return f"<PlanCheck reason={self.reason!r} unusable={self.unusable}>"


def check_llm_plan(
    plan: Plan, message: str, agents: Mapping[str, AgentInfo], rules: LocalPlanner
) -> PlanCheck:
    """Check ``plan`` (made by a model for ``message``) against the agents' hints."""
    asked = _words(message)
    until = time.perf_counter() + PATTERN_BUDGET  # the agents' patterns: one budget in all
    kept: list[PlanStep] = []
    seen: dict[tuple[str, str], str] = {}
    renamed: dict[str, str] = {}
    dropped: set[str] = set()
    reason = ""
    for step in plan.steps:
        instruction = _BLANK.sub(" ", step.instruction).strip()
        if _WORD.search(instruction) is None:
            dropped.add(step.id)
            reason = reason or "empty_instruction"
            continue
        if not step.depends_on and not _words(instruction) & asked:
            dropped.add(step.id)
            reason = reason or "unrelated_instruction"
            continue
        key = (step.agent, instruction.casefold())
        if key in seen:
            renamed[step.id] = seen[key]
            reason = reason or "repeated_step"
            continue
        seen[key] = step.id
        scores = rules.scores(instruction, agents, until=until)
        if (
            scores.get(step.agent, 0) == 0
            and _hinted(agents[step.agent])
            and (any(scores.values()) or GENERAL_AGENT in agents)
        ):
            # Another agent's hints match -- or none do, and the clause is the general
            # agent's, as the rules would give it.
            return PlanCheck(plan, "wrong_agent", unusable=True)
        kept.append(step)
    steps = []
    for step in kept:
        depends = []
        for dep in step.depends_on:
            dep = renamed.get(dep, dep)
            if dep not in dropped and dep != step.id and dep not in depends:
                depends.append(dep)
        steps.append(
            PlanStep(
                id=step.id,
                agent=step.agent,
                instruction=step.instruction,
                depends_on=depends,
                required=step.required,
                timeout_s=step.timeout_s,
            )
        )
    checked = Plan(steps=steps, source=plan.source)
    if plan.steps and not steps:
        return PlanCheck(checked, reason, unusable=True)
    used = {step.agent for step in steps}
    if any(agent not in used for agent in rules.sure_agents(message, agents)):
        return PlanCheck(checked, "missed_agent", unusable=True)
    return PlanCheck(checked, reason)


def _words(text: str) -> set[str]:
    """The words of ``text`` that carry meaning: numbers, and words of three letters or more
    that are not among the commonest."""
    return {
        word
        for word in _TOKEN.findall(text.casefold())
        if (word.isdigit() or len(word) >= 3) and word not in _COMMON
    }


def _hinted(agent: AgentInfo) -> bool:
    return bool(agent.patterns or agent.keywords)
