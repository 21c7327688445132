"""Summarizer agent: condenses its dependencies' outputs (or the text it is given).

With a language model it asks for a summary; offline it is extractive: it
keeps the sentences whose words matter most (word frequency, stop words
ignored), in their original order. Either way the result is short.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

from switchboard.orchestrator.core import AgentError, AgentTask

from ..sdk import Agent, TaskContext

__all__ = ["SUMMARIZER", "extractive_summary"]

NAME: Final = "summarizer"
DESCRIPTION: Final = (
    "Condenses text into a short summary: the outputs of the steps it depends on, or the text "
    "after a colon. Example: 'summarize the results above'."
)
KEYWORDS: Final = ("summarize", "summarise", "summary", "condense", "tldr", "shorten", "recap")
PATTERNS: Final = (r"\bsummari[sz]e\b", r"\btl;?dr\b", r"\bin (?:short|brief)\b")

MAX_INPUT_CHARS: Final = 200_000
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9']+")
_STOP: Final = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "she",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "you",
        "your",
        "we",
        "not",
        "no",
        "so",
        "if",
        "then",
        "than",
        "there",
        "these",
        "those",
        "which",
        "who",
        "what",
        "when",
        "where",
        "how",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "into",
        "about",
        "over",
        "after",
        "before",
        "also",
        "just",
        "only",
        "very",
        "more",
        "most",
    ]
)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def source_text(instruction: str, inputs: Mapping[str, Any] | None) -> str:
    if inputs:
        parts = [_text(inputs[key]) for key in sorted(inputs) if inputs[key] is not None]
        if parts:
            return "\n".join(parts)
    if ":" in instruction:
        return instruction.split(":", 1)[1].strip()
    return instruction.strip()


def extractive_summary(text: str, *, max_sentences: int = 3) -> str:
    """The most informative sentences of ``text``, in order (deterministic)."""
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    if len(sentences) <= max_sentences:
        return " ".join(sentences) if len(sentences) > 1 or not sentences else sentences[0]
    frequency = Counter(w for w in _WORD.findall(text.lower()) if w not in _STOP)
    scored = []
    for index, sentence in enumerate(sentences):
        words = [w for w in _WORD.findall(sentence.lower()) if w not in _STOP]
        score = sum(frequency[w] for w in words) / (len(words) ** 0.5) if words else 0.0
        scored.append((score, -index, sentence))
    keep = max(1, min(max_sentences, round(len(sentences) / 3)))
    chosen = sorted(sorted(scored, reverse=True)[:keep], key=lambda item: -item[1])
    return " ".join(sentence for _, _, sentence in chosen)


async def summarize(task: AgentTask, ctx: TaskContext) -> str:
    text = source_text(task.instruction, task.inputs)
    if not text:
        raise AgentError(
            "There is nothing to summarize: give text after a colon, or depend on "
            "steps whose outputs should be condensed."
        )
    if len(text) > MAX_INPUT_CHARS:
        raise AgentError(
            f"The text is {len(text)} characters; at most {MAX_INPUT_CHARS} can be summarized."
        )
    if ctx.llm.offline:
        return extractive_summary(text)
    return await ctx.ask_llm(
        f"Summarize concisely, keeping every number and name that matters:\n\n{text}",
        system="You write short, faithful summaries.",
    )


SUMMARIZER = Agent(
    name=NAME,
    description=DESCRIPTION,
    handler=summarize,
    keywords=KEYWORDS,
    patterns=PATTERNS,
    input_hints="depends on the steps to condense",
)
