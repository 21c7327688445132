"""Plan validation: known agents, unique ids, known dependencies, no cycles, a size limit.

A plan is checked as a whole before any step runs, so a bad plan costs
nothing but the error. Cycle detection is the standard library's
``graphlib``.
"""

from __future__ import annotations

import graphlib
from collections.abc import Collection

from ..core.conversation import Plan
from ..core.errors import PlanError

__all__ = ["GENERAL_AGENT", "dependents", "validate_plan"]

#: The agent that takes clauses nothing else matches (if it runs).
GENERAL_AGENT = "llm"


def validate_plan(
    plan: Plan, agents: Collection[str], *, max_steps: int, earlier: Collection[str] = ()
) -> None:
    """Raise :class:`PlanError` (with a sentence saying what is wrong) unless ``plan`` can run.

    ``earlier``: ids of steps that already ran (in earlier rounds): a step may depend on
    them, and may not reuse their ids.
    """
    steps = plan.steps
    if len(steps) > max_steps:
        raise PlanError(f"The plan has {len(steps)} steps; at most {max_steps} are allowed.")
    ids = [step.id for step in steps]
    duplicates = sorted({i for i in ids if ids.count(i) > 1 or i in earlier})
    if duplicates:
        raise PlanError(f"The plan repeats step ids: {', '.join(duplicates)}.")
    unknown = sorted({step.agent for step in steps if step.agent not in agents})
    if unknown:
        available = ", ".join(sorted(agents)) or "none"
        raise PlanError(
            f"The plan uses unknown agents: {', '.join(unknown)} (available: {available})."
        )
    known = set(ids).union(earlier)
    for step in steps:
        if step.id in step.depends_on:
            raise PlanError(f"Step {step.id} depends on itself.")
        missing = [d for d in step.depends_on if d not in known]
        if missing:
            raise PlanError(f"Step {step.id} depends on unknown steps: {', '.join(missing)}.")
    if not any(step.depends_on for step in steps):
        return  # no edges, no cycle (the common case: skip building the graph)
    try:
        graphlib.TopologicalSorter({s.id: s.depends_on for s in steps}).prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise PlanError(f"The plan has a dependency cycle: {cycle}.") from exc


def dependents(plan: Plan, step_id: str) -> set[str]:
    """Every step that needs ``step_id``, directly or through others."""
    children: dict[str, list[str]] = {s.id: [] for s in plan.steps}
    for step in plan.steps:
        for dep in step.depends_on:
            children.setdefault(dep, []).append(step.id)  # a dep may be an earlier round's
    found: set[str] = set()
    todo = list(children.get(step_id, []))
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children[current])
    return found
