"""Agents for tests (importable as ``tests.support.agents:<name>`` by subprocesses too)."""

from __future__ import annotations

import asyncio
import json

from switchboard.agents import Agent, TaskContext, agent
from switchboard.orchestrator import AgentError, AgentTask


@agent(
    "sleepy",
    "Waits the number of seconds given in the instruction, then says so.",
    keywords=("sleep", "wait"),
    patterns=(r"\bsleep\b",),
)
async def sleepy(task: AgentTask, ctx: TaskContext) -> str:
    await ctx.progress("sleeping")
    await asyncio.sleep(float(task.instruction.split()[-1]))
    return f"slept {task.instruction.split()[-1]}"


@agent(
    "upper",
    "Upper-cases the output of the step it depends on, or its instruction.",
    keywords=("upper", "shout"),
)
async def upper(task: AgentTask, ctx: TaskContext) -> str:
    values = [v for v in task.inputs.values() if v is not None]
    text = values[0] if values else task.instruction
    return (text if isinstance(text, str) else json.dumps(text)).upper()


@agent("broken", "Always fails with a clear message.", keywords=("broken",))
async def broken(task: AgentTask, ctx: TaskContext) -> str:
    raise AgentError("The broken agent is broken on purpose.")


@agent("whoami", "Answers with the user and correlation id of the task.", keywords=("whoami",))
async def whoami(task: AgentTask, ctx: TaskContext) -> dict[str, str | None]:
    return {
        "user": task.user_id,
        "correlation_id": task.correlation_id,
        "instruction": task.instruction,
    }


@agent(
    "large",
    "Answers with as many characters of text as the number in the instruction says.",
    keywords=("large",),
)
async def large(task: AgentTask, ctx: TaskContext) -> str:
    size = int(task.instruction.split()[-1])
    line = "All work and no play makes a large answer. "
    return (line * (size // len(line) + 1))[: size - 1] + "."  # nothing to strip


ALL: list[Agent] = [sleepy, upper, broken, whoami]
