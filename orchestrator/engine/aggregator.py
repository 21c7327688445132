"""The aggregator: step results in, one answer out (LLM, or a deterministic composition)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import structlog

from ..core.conversation import ConversationTurn, Plan, StepResult
from ..core.deadline import Deadline
from ..core.envelopes import Usage
from ..core.errors import LLMError
from ..llm.base import LLM, ChatMessage
from .answer_stream import TokenEmitter, stream_completion
from .planner import SUMMARY_AGENT

__all__ = ["Aggregator", "compose", "output_text"]

log = structlog.get_logger("switchboard.aggregator")

SYSTEM_PROMPT = """You answer the user's question from the results of the agents that worked \
on it. Be concise and exact; use the results, do not invent numbers or facts. If a step failed, \
say what could not be done."""


def output_text(value: Any) -> str:
    """A step's output as the answer shows it (JSON for anything but text)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)


def compose(plan: Plan, results: Sequence[StepResult], *, unmatched: str = "") -> str:
    """The deterministic answer: each step's output, then what failed and why."""
    lines: list[str] = []
    ok = [r for r in results if r.status == "ok"]
    needed = {dep for step in plan.steps for dep in step.depends_on}
    summaries = [r for r in ok if r.agent == SUMMARY_AGENT and r.id not in needed]
    for result in summaries or ok:  # a final summary is the answer; else every output
        text = output_text(result.output)
        if text and text not in lines:
            lines.append(text)
    for result in results:
        if result.status == "failed" and result.error is not None:
            lines.append(f"Step {result.id} ({result.agent}) failed: {result.error.message}")
        elif result.status == "skipped" and result.error is not None:
            lines.append(f"Step {result.id} ({result.agent}) was skipped: {result.error.message}")
    if not plan.steps:
        lines.append(
            f"No agent can handle that request (available agents: {unmatched})."
            if unmatched
            else "No agents are running, so nothing can handle that request."
        )
    if len(lines) > 1 and len(ok) > 1:
        return "\n".join(f"- {line}" for line in lines)
    return "\n".join(lines)


class Aggregator:
    """Writes the final answer: with the LLM when there is one, else by composition."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    async def answer(
        self,
        message: str,
        plan: Plan,
        results: Sequence[StepResult],
        *,
        history: Sequence[ConversationTurn] = (),
        deadline: Deadline | None = None,
        available: str = "",
        tokens: TokenEmitter | None = None,
    ) -> tuple[str, Usage]:
        composed = compose(plan, results, unmatched=available)
        if self.llm.offline or not plan.steps:
            return composed, Usage()
        findings = "\n".join(
            f"[{r.id} {r.agent} {r.status}] "
            + (output_text(r.output) if r.status == "ok" else (r.error.message if r.error else ""))
            for r in results
        )
        messages = [ChatMessage("system", SYSTEM_PROMPT)]
        for turn in history[-5:]:
            messages.append(ChatMessage("user", turn.message))
            messages.append(ChatMessage("assistant", turn.answer))
        messages.append(ChatMessage("user", f"Question: {message}\n\nAgent results:\n{findings}"))
        try:
            if tokens is None:
                completion = await self.llm.complete(messages, deadline=deadline)
            else:  # the answer's text goes to the watchers as it is written
                completion = await stream_completion(
                    self.llm, messages, emit=tokens, deadline=deadline
                )
        except LLMError as exc:
            log.warning("llm answer failed; composing the answer", error=str(exc))
            return composed, Usage()
        return completion.text, completion.usage
