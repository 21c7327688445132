"""Agents of the tracing tests (importable as ``tests.tracing.agents:<name>`` by subprocesses)."""

from __future__ import annotations

from switchboard.agents import TaskContext, agent
from switchboard.orchestrator import AgentTask, OverloadedError

#: Steps refused once already, by (correlation id, step id): the next attempt runs.
_REFUSED: set[tuple[str, str]] = set()


@agent(
    "flaky",
    "Checks the spelling of a word; refuses each step once as overloaded, then answers.",
    keywords=("spelling", "flaky"),
    patterns=(r"\bspelling\b",),
)
async def flaky(task: AgentTask, ctx: TaskContext) -> str:
    key = (task.correlation_id, task.task_id)
    if key not in _REFUSED:
        _REFUSED.add(key)
        raise OverloadedError("The flaky agent refuses the first attempt of every step.")
    return f"checked: {task.instruction}"
