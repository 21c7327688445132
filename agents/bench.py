"""The agents ``switchboard bench`` runs: instant (``noop``) and slow like a model (``sleeper``).

Both are ordinary SDK agents, served by ``switchboard agent MODULE:ATTR`` in
their own process::

    switchboard agent switchboard.agents.bench:noop
    switchboard agent switchboard.agents.bench:sleeper   # SWITCHBOARD_BENCH_DELAY=1.0

The offline planner routes the bench message (:data:`MESSAGE`) to them by
keyword; the bench also restricts each plan to the one agent
(``ConversationRequest.agents``), so exactly one step runs per conversation --
except in the two-round row, whose first step names "the result" and, without
an input, is refused: round 2 runs it again with the other step's output.
"""

from __future__ import annotations

import asyncio
import os

from switchboard.orchestrator.bench.workload import (
    DELAY_ENV,
    MESSAGE,
    NEEDS_INPUT,
    NOOP,
    SLEEPER,
)
from switchboard.orchestrator.core.envelopes import AgentTask
from switchboard.orchestrator.core.errors import AgentError

from .sdk import TaskContext, agent

__all__ = ["DELAY_ENV", "MESSAGE", "NOOP", "SLEEPER", "noop", "sleeper"]


@agent(
    NOOP,
    "Benchmark agent: answers 'pong' at once. Example: 'benchmark ping'",
    keywords=("benchmark",),
    patterns=(r"\bbenchmark\b",),
)
async def noop(task: AgentTask, ctx: TaskContext) -> str:
    if not task.inputs and NEEDS_INPUT in task.instruction:  # the two-round bench row
        raise AgentError(f"Nothing to work on: '{NEEDS_INPUT}' names no step's output.")
    return "pong"


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get(DELAY_ENV, "1.0")))
    except ValueError:
        return 1.0


_DELAY = _delay()


@agent(
    SLEEPER,
    "Benchmark agent: waits like a language model would (1 s by default), then answers "
    "'pong'. Example: 'benchmark ping'",
    keywords=("benchmark",),
    patterns=(r"\bbenchmark\b",),
)
async def sleeper(task: AgentTask, ctx: TaskContext) -> str:
    await asyncio.sleep(_DELAY)
    return "pong"
