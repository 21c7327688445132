"""The aggregator: step results in, one answer out (LLM, or a deterministic composition).

The agents' outputs are the truth; a language model may only stitch them
together, never replace them. The policy, in order:

1. Offline, or nothing was planned: the composed answer (:func:`compose`).
2. The outputs already answer -- at most one step gave output, every output came
   from a deterministic agent (its step used no model tokens), or a final
   summarizer condensed them: the composed answer, and no model call. A
   summary written by a model is shown with the outputs it condensed.
3. Otherwise (several outputs, some written by a model) the model stitches them
   into one answer, within the answer budget (``llm_answer_timeout``), and the
   outputs are cited beneath it (:data:`CITED`), so a hallucinated rewrite cannot
   hide what the agents found. An empty stitch, or a failed call, is the composed
   answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import structlog

from ..core import tracing
from ..core.conversation import ConversationTurn, Plan, StepResult
from ..core.deadline import Deadline
from ..core.envelopes import Usage
from ..core.errors import LLMError
from ..llm.base import LLM, ChatMessage, Completion
from ..llm.entities import decode_entities
from .answer_stream import TokenEmitter, stream_completion
from .planner import SUMMARY_AGENT

__all__ = ["CITED", "Aggregator", "cite", "compose", "output_text", "outputs_answer"]

log = structlog.get_logger("switchboard.aggregator")

#: The heading of the cited outputs under a stitched (or model-summarized) answer.
CITED = "From the agents:"

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


def _from_model(result: StepResult) -> bool:
    """The step's output was written by a language model (its agent spent tokens)."""
    return result.usage is not None and result.usage.total_tokens > 0


def _final_summaries(plan: Plan, results: Sequence[StepResult]) -> list[StepResult]:
    needed = {dep for step in plan.steps for dep in step.depends_on}
    return [
        r for r in results if r.status == "ok" and r.agent == SUMMARY_AGENT and r.id not in needed
    ]


def outputs_answer(plan: Plan, results: Sequence[StepResult]) -> bool:
    """The steps' outputs are the answer as they are: no model should rewrite them.

    True when at most one step gave output, when every output came from a
    deterministic agent, or when a final summarizer condensed them already.
    """
    given = [r for r in results if r.status == "ok" and output_text(r.output)]
    if len(given) <= 1 or _final_summaries(plan, results):
        return True
    return not any(_from_model(r) for r in given)


def cite(text: str, results: Sequence[StepResult], *, skip: Sequence[str] = ()) -> str:
    """``text``, then every step's output under :data:`CITED` (what the agents really said)."""
    lines = [
        f"- {r.id} ({r.agent}): {output_text(r.output)}"
        for r in results
        if r.status == "ok" and r.id not in skip and output_text(r.output)
    ]
    if not lines:
        return text
    return "\n".join([text, "", CITED, *lines])


class Aggregator:
    """Writes the final answer: with the LLM when there is one, else by composition."""

    def __init__(self, llm: LLM, *, budget: float | None = None) -> None:
        """``budget``: most seconds the model may take to stitch an answer (None: the
        conversation's deadline and the provider's own timeout)."""
        self.llm = llm
        self.budget = budget

    @tracing.traced("aggregate")
    async def answer(
        self,
        message: str,
        plan: Plan,
        results: Sequence[StepResult],
        *,
        history: Sequence[ConversationTurn] = (),
        deadline: Deadline | None = None,
        available: str = "",
        draft: str | None = None,
        tokens: TokenEmitter | None = None,
    ) -> tuple[str, Usage]:
        """``draft``: the model's answer, already written in the tool-calling loop
        (``engine.rounds``): no second LLM call is made, and the same policy holds for it
        as for an answer written here -- where the outputs answer, they are the answer;
        else the draft stitches them, and they are cited under it."""
        composed = compose(plan, results, unmatched=available)
        if self.llm.offline or not plan.steps:
            return composed, Usage()
        if outputs_answer(plan, results):
            summaries = _final_summaries(plan, results)
            if summaries and any(_from_model(r) for r in summaries):
                return cite(composed, results, skip=[r.id for r in summaries]), Usage()
            return composed, Usage()
        if draft is not None:
            return self._stitched(draft, composed, results), Usage()
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
        if self.budget is not None:
            deadline = (deadline or Deadline.after(self.budget)).earlier(self.budget)
        try:
            if tokens is None:
                completion = await self.llm.complete(messages, deadline=deadline)
            else:  # the answer's text goes to the watchers as it is written
                completion = await stream_completion(
                    self.llm, messages, emit=tokens, deadline=deadline
                )
                text = decode_entities(completion.text, (m.content or "" for m in messages))
                completion = Completion(text=text, usage=completion.usage)
        except LLMError as exc:
            log.warning("llm answer failed; composing the answer", error=str(exc))
            return composed, Usage()
        return self._stitched(completion.text, composed, results), completion.usage

    @staticmethod
    def _stitched(text: str, composed: str, results: Sequence[StepResult]) -> str:
        """The model's text over the outputs, which are cited under it (and what failed)."""
        stitched = text.strip()
        if not stitched:
            return composed
        failures = [line for line in composed.splitlines() if _is_failure(line)]
        return cite("\n".join([stitched, *failures]), results)


def _is_failure(line: str) -> bool:
    return line.lstrip("- ").startswith("Step ") and (
        " failed: " in line or " was skipped: " in line
    )
