"""The built-in agents: calculator, clock and text (offline logic), llm and summarizer,
and trip, which works by calling the clock and the calculator (``ctx.call``).

The first three are pure functions run in a worker thread (their work is
bounded, but it is CPU work, and the event loop must never block); the last
two use the configured language model (and work offline, honestly).
"""

from __future__ import annotations

import asyncio
from types import ModuleType

from switchboard.orchestrator.core import AgentTask

from ..sdk import Agent, TaskContext
from . import calculator, clock, text
from .assistant import ASSISTANT
from .summarizer import SUMMARIZER
from .trip import TRIP

__all__ = ["BUILTIN_NAMES", "BUILTIN_PATTERNS", "builtin_agents"]

BUILTIN_NAMES = ("calculator", "clock", "text", "llm", "summarizer", "trip")


def _offline(module: ModuleType, input_hints: str) -> Agent:
    run = module.run

    async def handler(task: AgentTask, ctx: TaskContext) -> str:
        result: str = await asyncio.to_thread(run, task.instruction, task.inputs)
        return result

    return Agent(
        name=module.NAME,
        description=module.DESCRIPTION,
        handler=handler,
        keywords=tuple(module.KEYWORDS),
        patterns=tuple(module.PATTERNS),
        input_hints=input_hints,
    )


def builtin_agents() -> dict[str, Agent]:
    """Every built-in agent by name."""
    return {
        "calculator": _offline(calculator, "an arithmetic expression, or 'the result' of a step"),
        "clock": _offline(clock, "places (cities, countries, time zones) or an ISO date"),
        "text": _offline(text, "quoted text, text after a colon, or earlier steps' outputs"),
        "llm": ASSISTANT,
        "summarizer": SUMMARIZER,
        "trip": TRIP,
    }


#: Every pattern the built-in agents advertise. Each is linear-time in the text it is
#: matched against (``tests/security/test_redos.py`` checks them all), so the orchestrator
#: may run them without a timeout (``OrchestratorService(trusted_patterns=...)``).
BUILTIN_PATTERNS: frozenset[str] = frozenset(
    pattern for agent in builtin_agents().values() for pattern in agent.patterns
)
