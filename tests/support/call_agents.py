"""Agents that call agents, for the ``ctx.call`` tests (importable by agent subprocesses too).

``chain_a`` calls ``chain_b`` calls ``chain_c`` calls ``chain_d``: each passes the
instruction on and wraps the answer; ``chain_d`` answers, or with ``hang`` waits until it
is cancelled. Every link notes in the ledger (env ``TEST_CALL_LEDGER``, one JSON object a
line) when it starts -- with its correlation id, user, call path and time left -- and
when it is cancelled, so a test can see what each process did.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from switchboard.agents import Agent, TaskContext, agent
from switchboard.orchestrator import AgentTask, SwitchboardError

CALL_LEDGER_ENV = "TEST_CALL_LEDGER"

#: What the in-process agents noted (tests running agents in their own process read this).
NOTES: list[dict[str, Any]] = []


def _write(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as ledger:  # one small write: atomic with O_APPEND
        ledger.write(line)


def _note(event: str, name: str, task: AgentTask, ctx: TaskContext) -> tuple[dict[str, Any], str]:
    entry = {
        "event": event,
        "agent": name,
        "pid": os.getpid(),
        "correlation_id": task.correlation_id,
        "user": task.user_id,
        "task_id": task.task_id,
        "time_left": round(ctx.time_left(), 3),
        "calls_left": ctx.calls_left,
    }
    NOTES.append(entry)
    return entry, json.dumps(entry) + "\n"


async def note(event: str, name: str, task: AgentTask, ctx: TaskContext) -> None:
    _entry, line = _note(event, name, task, ctx)
    if path := os.environ.get(CALL_LEDGER_ENV):
        await asyncio.to_thread(_write, path, line)


def note_now(event: str, name: str, task: AgentTask, ctx: TaskContext) -> None:
    """:func:`note` for a handler being cancelled: one short append, without awaiting."""
    _entry, line = _note(event, name, task, ctx)
    if path := os.environ.get(CALL_LEDGER_ENV):
        _write(path, line)


def link(name: str, callee: str | None) -> Agent:
    """One link of a chain: calls ``callee`` (or answers, or hangs on ``hang``)."""

    async def handler(task: AgentTask, ctx: TaskContext) -> str:
        await note("started", name, task, ctx)
        try:
            if callee is not None:
                return f"{name}<{await ctx.call(callee, task.instruction)}"
            if "hang" in task.instruction.split():
                await asyncio.sleep(3600)
            return name
        except asyncio.CancelledError:
            note_now("cancelled", name, task, ctx)
            raise

    return Agent(
        name=name,
        description=f"Test chain link {name}: passes its instruction on.",
        handler=handler,
        keywords=("chain",),
        calls=(callee,) if callee else (),
    )


chain_a = link("chain_a", "chain_b")
chain_b = link("chain_b", "chain_c")
chain_c = link("chain_c", "chain_d")
chain_d = link("chain_d", None)
CHAIN = [chain_a, chain_b, chain_c, chain_d]


@agent("ping", "Test: calls pong.", keywords=("ping",), calls=("pong",))
async def ping(task: AgentTask, ctx: TaskContext) -> Any:
    await note("started", "ping", task, ctx)
    return await ctx.call("pong", task.instruction)


@agent("pong", "Test: calls ping back (a cycle).", keywords=("pong",), calls=("ping",))
async def pong(task: AgentTask, ctx: TaskContext) -> Any:
    await note("started", "pong", task, ctx)
    return await ctx.call("ping", task.instruction)


@agent("leaf", "Test: answers at once.", keywords=("leaf",))
async def leaf(task: AgentTask, ctx: TaskContext) -> str:
    await note("started", "leaf", task, ctx)
    await asyncio.sleep(0.05)  # so calls started together overlap
    return f"leaf {task.instruction}"


@agent("branch", "Test: calls leaf three times at once.", keywords=("branch",), calls=("leaf",))
async def branch(task: AgentTask, ctx: TaskContext) -> list[Any]:
    await note("started", "branch", task, ctx)
    calls = [ctx.call("leaf", f"{task.instruction}.{n}") for n in range(3)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    return [r.code.value if isinstance(r, SwitchboardError) else r for r in results]


@agent(
    "fan",
    "Test: calls branch four times at once (each calls leaf three times).",
    keywords=("fan",),
    calls=("branch", "leaf"),
)
async def fan(task: AgentTask, ctx: TaskContext) -> list[Any]:
    await note("started", "fan", task, ctx)
    results = await ctx.call_all([("branch", f"b{n}") for n in range(4)], return_exceptions=True)
    return [r.code.value if isinstance(r, SwitchboardError) else r for r in results]


@agent("sneaky", "Test: calls leaf without declaring it.", keywords=("sneaky",), calls=("ping",))
async def sneaky(task: AgentTask, ctx: TaskContext) -> Any:
    return await ctx.call("leaf", task.instruction)
