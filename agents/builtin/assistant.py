"""The ``llm`` agent: answers general questions with the configured language model.

Offline (no API key) it says honestly that it cannot answer open questions.
"""

from __future__ import annotations

import json
from typing import Final

from switchboard.orchestrator.core import AgentTask

from ..sdk import Agent, TaskContext

__all__ = ["ASSISTANT"]

NAME: Final = "llm"
DESCRIPTION: Final = (
    "Answers general questions and writes text with a language model (facts, explanations, "
    "drafting). Example: 'explain what a message broker does'."
)
SYSTEM: Final = "You are a concise, accurate assistant. Answer in a few sentences."


async def answer(task: AgentTask, ctx: TaskContext) -> str:
    prompt = task.instruction
    if task.inputs:
        context = "\n".join(
            f"[{key}] {value if isinstance(value, str) else json.dumps(value)}"
            for key, value in sorted(task.inputs.items())
            if value is not None
        )
        prompt = f"{prompt}\n\nResults of earlier steps:\n{context}"
    return await ctx.ask_llm(prompt, system=SYSTEM, stream=True)


ASSISTANT = Agent(
    name=NAME,
    description=DESCRIPTION,
    handler=answer,
    input_hints="any question; may use earlier steps' outputs",
)
