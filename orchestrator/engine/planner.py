"""Planners: the user's message and the agent catalog in, a plan (a DAG of steps) out.

``LocalPlanner`` is deterministic and offline: it splits the message into
clauses and gives each clause to the agent whose advertised patterns and
keywords match it best; a clause that refers back ("the result", "then")
depends on the step before it, and a summarizer depends on everything before
it. ``LLMPlanner`` asks a language model for the plan (tool call validated
with msgspec), repairs small mistakes, and falls back to the local planner
when the model's plan is unusable -- logged and counted.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Annotated

import msgspec
import regex
import structlog
from msgspec import Meta

from ..core import tracing
from ..core.catalog import AgentInfo
from ..core.conversation import ConversationTurn, Plan, PlanStep
from ..core.deadline import Deadline
from ..core.envelopes import Usage
from ..core.errors import LLMError, PlanError
from ..core.subjects import safe_token
from ..llm.base import LLM, ChatMessage
from ..metrics import PLAN_FALLBACKS
from .followup import resolve_followup
from .plan import GENERAL_AGENT, validate_plan
from .plancheck import check_llm_plan

__all__ = ["GENERAL_AGENT", "SUMMARY_AGENT", "LLMPlanner", "LocalPlanner", "split_clauses"]

log = structlog.get_logger("switchboard.planner")

#: The agent that condenses the outputs of the steps before it.
SUMMARY_AGENT = "summarizer"

_QUESTION_START = (
    r"what|what's|whats|how|when|where|which|who|why|is|are|can|could|please|tell|give|"
    r"calculate|compute|evaluate|count|convert|summari[sz]e|extract|list|find|show|"
    r"uppercase|lowercase|reverse|translate|explain|describe|write"
)
# Separators that start with blanks start at the beginning of their run -- "(?:,|(?<!\s))"
# instead of ",?" -- so a long run of blanks is scanned once, not once per blank (every
# separator takes the blanks after it, so the next one never starts inside a run). The
# message is split on the event loop: quadratic here stalled the orchestrator for 20 s on
# one 32 KB message.
_BLANKS = r"(?:,|(?<!\s))\s+"
_SPLIT = re.compile(
    r"(?:[?!;]+\s*|\.\s+|\n\s*"
    rf"|{_BLANKS}and\s+then\s+|{_BLANKS}then\s+|,\s*after\s+that\s*,?\s*"
    rf"|,\s*(?:and\s+)?(?=(?:{_QUESTION_START})\b)"
    rf"|(?<!\s)\s+and\s+(?=(?:{_QUESTION_START})\b)"
    r"|,\s*and\s+also\s+|(?<!\s)\s+and\s+also\s+|(?<!\s)\s+also\s+)",
    re.IGNORECASE,
)
_REFERS_BACK = re.compile(
    r"\b(?:the\s+(?:result|answer|output|previous|above|last)|that\s+(?:result|answer|number|"
    r"text)|of\s+(?:it|that|this)|with\s+(?:it|that)|its|their|then)\b",
    re.IGNORECASE,
)


def refers_back(clause: str) -> bool:
    """Whether ``clause`` uses another step's output ("the result", "with it", "then")."""
    return _REFERS_BACK.search(clause) is not None


_THEN = re.compile(rf"(?:{_BLANKS}and\s+then\s+|{_BLANKS}then\s+|,\s*after\s+that)", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9']+")
# What every separator of _SPLIT contains: a message without any is one clause.
_MAY_SPLIT = re.compile(r"[?!;.\n,]|and|then|also", re.IGNORECASE)


_QUOTED = re.compile(r'"[^"]*"|“[^”]*”|\'[^\']*\'(?!\w)')
_PAYLOAD_COLON = re.compile(r"^[^:\n]{1,80}?:\s")


def _masked(message: str) -> str:
    """``message`` with quoted text and text after "do this:" blanked, so it is never split."""
    chars = list(message)
    for match in _QUOTED.finditer(message):
        chars[match.start() + 1 : match.end() - 1] = "_" * (match.end() - match.start() - 2)
    colon = _PAYLOAD_COLON.match(message)
    if colon:
        chars[colon.end() :] = "_" * (len(chars) - colon.end())
    return "".join(chars)


def split_clauses(message: str) -> list[str]:
    """The message cut into clauses that could each be one step, in order.

    Quoted text and the text after a leading "instruction:" stay whole.
    """
    if _MAY_SPLIT.search(message) is None:  # the common one-clause question, at a glance
        tail = message.strip(" ,.;:?!")
        return [tail] if tail else []
    clauses = []
    pos = 0
    for match in _SPLIT.finditer(_masked(message)):
        clause = message[pos : match.start()].strip(" ,.;:")
        if clause:
            clauses.append((clause, bool(_THEN.fullmatch(match.group(0)))))
        pos = match.end()
    tail = message[pos:].strip(" ,.;:?!")
    if tail:
        clauses.append((tail, False))
    # A clause introduced by "then" refers back: keep the word so the planner sees it.
    result = []
    previous_then = False
    for clause, then_after in clauses:
        result.append(f"then {clause}" if previous_then else clause)
        previous_then = then_after
    return result


#: Most time one agent pattern may take on one clause. Patterns come from the agents
#: (over $SRV.INFO): a pathological one must not stall the orchestrator's event loop, so
#: they run on the ``regex`` engine, which can stop a match that takes too long -- except
#: the planner's *trusted* patterns (the ones Switchboard ships, audited linear-time by
#: ``tests/security/test_redos.py``), which run without a timeout: its fixed cost, about
#: 2 µs a search, was three quarters of the time spent planning against the built-ins.
PATTERN_TIMEOUT = 0.02
#: Most time all agents' patterns together may take on one message (a message of up to 32
#: clauses, each stopping a few patterns at PATTERN_TIMEOUT, would otherwise stall the
#: loop for seconds). Past it the rest of the message is planned by keywords alone.
PATTERN_BUDGET = 0.1
#: The score at which the rules are sure of an agent (a pattern, or three keywords), and
#: how many clauses of a message are looked at for that.
SURE_SCORE = 3
MAX_SURE_CLAUSES = 32


class _Hints:
    """An agent's advertised patterns (compiled) and keywords (lower-cased), ready to score."""

    __slots__ = ("keywords", "patterns", "trusted")

    def __init__(
        self, patterns: tuple[str, ...], keywords: tuple[str, ...], trusted: frozenset[str]
    ) -> None:
        self.trusted = [c for p in patterns if p in trusted and (c := _compiled(p))]
        self.patterns = [c for p in patterns if p not in trusted and (c := _compiled(p))]
        self.keywords = [keyword.lower() for keyword in keywords]

    def score(self, clause: str, words: set[str], until: float) -> int:
        """Keywords found in ``words`` (1 each), patterns found in ``clause`` (3 each).

        Patterns run until ``until`` (``time.perf_counter``) at the latest.
        """
        score = 3 * sum(1 for linear in self.trusted if linear.search(clause) is not None)
        for compiled in self.patterns:
            left = until - time.perf_counter()
            if left <= 0:
                break
            try:
                if compiled.search(clause, timeout=min(PATTERN_TIMEOUT, left)) is not None:
                    score += 3
            except TimeoutError:
                log.warning(
                    "agent pattern too slow; ignored for this clause", pattern=compiled.pattern[:80]
                )
        return score + sum(1 for keyword in self.keywords if keyword in words)


def _compiled(pattern: str) -> regex.Pattern[str] | None:
    try:
        return regex.compile(pattern, regex.IGNORECASE)
    except (regex.error, RecursionError, ValueError):
        return None


@functools.lru_cache(maxsize=1024)
def _hints(patterns: tuple[str, ...], keywords: tuple[str, ...], trusted: frozenset[str]) -> _Hints:
    # Keyed by the hints themselves: the catalog's refreshes return equal tuples, so an
    # agent's patterns are compiled once, not per conversation.
    return _Hints(patterns, keywords, trusted)


class LocalPlanner:
    """Deterministic, rule-based planning from the agents' advertised hints.

    ``trusted_patterns`` run without a timeout: give only patterns known to match in
    linear time (``agents.BUILTIN_PATTERNS``). A pattern is trusted by its text, so an
    agent that advertises a trusted pattern gains nothing but that pattern.
    """

    def __init__(self, trusted_patterns: Collection[str] = ()) -> None:
        self.trusted_patterns = frozenset(trusted_patterns)

    @tracing.traced_sync("plan")
    def plan(
        self,
        message: str,
        agents: Mapping[str, AgentInfo],
        *,
        max_steps: int,
        history: Sequence[ConversationTurn] = (),
    ) -> Plan:
        """The plan for ``message``; an elliptical follow-up ("and in London?") is first
        resolved against the last turn of ``history`` (``engine.followup``)."""
        if history:
            message = resolve_followup(message, history) or message
        steps: list[PlanStep] = []
        until = time.perf_counter() + PATTERN_BUDGET
        for clause in split_clauses(message)[: max_steps * 2]:
            if len(steps) >= max_steps:
                break
            agent = self._choose(clause, agents, until, self.trusted_patterns)
            if agent is None:
                continue
            step_id = f"s{len(steps) + 1}"
            instruction = clause[5:] if clause.lower().startswith("then ") else clause
            depends: list[str] = []
            if agent == SUMMARY_AGENT:
                depends = [s.id for s in steps]
            elif steps and _REFERS_BACK.search(clause):
                depends = [steps[-1].id]
            steps.append(
                PlanStep(id=step_id, agent=agent, instruction=instruction, depends_on=depends)
            )
        return Plan(steps=steps, source="local")

    def candidates(self, clause: str, agents: Mapping[str, AgentInfo]) -> list[str]:
        """The agents whose hints match ``clause``, best first (the general agent never)."""
        until = time.perf_counter() + PATTERN_BUDGET
        words = set(_WORD.findall(clause.lower()))
        scored = []
        for name in sorted(agents):
            if name == GENERAL_AGENT:
                continue
            agent = agents[name]
            hints = _hints(agent.patterns, agent.keywords, self.trusted_patterns)
            score = hints.score(clause, words, until)
            if score > 0:
                scored.append((-score, name))
        return [name for _, name in sorted(scored)]

    def scores(
        self, clause: str, agents: Mapping[str, AgentInfo], *, until: float | None = None
    ) -> dict[str, int]:
        """Each agent's score on ``clause`` (a keyword 1, a pattern 3); not the general agent's.

        Untrusted patterns run until ``until`` (``time.perf_counter``; default: PATTERN_BUDGET
        from now) at the latest.
        """
        if until is None:
            until = time.perf_counter() + PATTERN_BUDGET
        words = set(_WORD.findall(clause.lower()))
        trusted = self.trusted_patterns
        return {
            name: _hints(agent.patterns, agent.keywords, trusted).score(clause, words, until)
            for name, agent in sorted(agents.items())
            if name != GENERAL_AGENT
        }

    def sure_agents(self, message: str, agents: Mapping[str, AgentInfo]) -> list[str]:
        """The agents the rules are sure of, one per clause at most: the only agent that
        matches the clause, by a pattern or three keywords."""
        sure = []
        until = time.perf_counter() + PATTERN_BUDGET  # one budget for the whole message
        for clause in split_clauses(message)[:MAX_SURE_CLAUSES]:
            scores = self.scores(clause, agents, until=until)
            matched = {name: score for name, score in scores.items() if score}
            if len(matched) == 1:
                ((name, score),) = matched.items()
                if score >= SURE_SCORE and name not in sure:
                    sure.append(name)
        return sure

    def sure_plan(self, message: str, agents: Mapping[str, AgentInfo]) -> Plan | None:
        """The local plan of a one-clause message whose one agent the rules are sure of
        (a language model could only make it worse, and slower); else None."""
        if len(split_clauses(message)) != 1 or not self.sure_agents(message, agents):
            return None
        plan = self.plan(message, agents, max_steps=1)
        return plan if len(plan.steps) == 1 else None

    @staticmethod
    def _choose(
        clause: str, agents: Mapping[str, AgentInfo], until: float, trusted: frozenset[str]
    ) -> str | None:
        best, best_score = None, 0
        words = set(_WORD.findall(clause.lower()))
        for name in sorted(agents):
            if name == GENERAL_AGENT:
                continue
            agent = agents[name]
            score = _hints(agent.patterns, agent.keywords, trusted).score(clause, words, until)
            if score > best_score:
                best, best_score = name, score
        if best is None and GENERAL_AGENT in agents and len(_WORD.findall(clause)) >= 2:
            return GENERAL_AGENT
        return best


class _StepDraft(msgspec.Struct, kw_only=True):
    id: str
    agent: str
    instruction: str
    depends_on: list[str] = msgspec.field(default_factory=list)
    required: bool = True


class _PlanDraft(msgspec.Struct, kw_only=True):
    """The shape asked of the model: lenient, so small mistakes can be repaired."""

    steps: list[_StepDraft]


#: The plan's JSON schema as sent to the model is tighter than what is decoded: agents an
#: enum of the catalog's names, ids ``s1``, ``s2``..., instructions not empty, at most
#: ``max_steps`` steps. A server with constrained decoding (llama.cpp's grammars, vLLM's
#: guided decoding, OpenAI's structured outputs) then cannot name an unknown agent or run
#: past the plan's size; what is decoded stays lenient, so a server that ignores the
#: schema still gets its small mistakes repaired rather than its plan thrown away.
MAX_INSTRUCTION_CHARS = 500


@functools.lru_cache(maxsize=64)
def plan_schema(agents: tuple[str, ...], max_steps: int) -> type[_PlanDraft]:
    """The plan type whose JSON schema the model is given for these agents."""

    def hint(**schema: object) -> Meta:
        return Meta(extra_json_schema=schema)

    step = msgspec.defstruct(
        "Step",
        [
            ("id", Annotated[str, hint(pattern=r"^s[0-9]{1,3}$")]),
            ("agent", Annotated[str, hint(enum=list(agents))]),
            ("instruction", Annotated[str, hint(minLength=1, maxLength=MAX_INSTRUCTION_CHARS)]),
            ("depends_on", Annotated[list[str], hint(maxItems=max_steps)], []),
            ("required", bool, True),
        ],
        bases=(_StepDraft,),
        kw_only=True,
    )
    return msgspec.defstruct(  # type: ignore[return-value]
        "Plan",
        [("steps", Annotated[list[step], hint(minItems=1, maxItems=max_steps)])],  # type: ignore[valid-type]
        bases=(_PlanDraft,),
        kw_only=True,
    )


SYSTEM_PROMPT = """You plan work for a team of agents. Split the user's request into steps, \
each done by one agent from the list below. Steps with no dependencies run in parallel; a \
step that needs another step's output lists it in depends_on and receives that output. Use \
only the agents listed, use as few steps as the request needs (at most {max_steps}), give \
each step a short id (s1, s2, ...) and a self-contained instruction for its agent. Mark a \
step required=false when the answer is still useful without it.

Agents:
{agents}"""


class LLMPlanner:
    """Plans with a language model; repairs or falls back to :class:`LocalPlanner`."""

    def __init__(self, llm: LLM, fallback: LocalPlanner | None = None) -> None:
        self.llm = llm
        self.fallback = fallback or LocalPlanner()

    @tracing.traced("plan")
    async def plan(
        self,
        message: str,
        agents: Mapping[str, AgentInfo],
        *,
        max_steps: int,
        history: Sequence[ConversationTurn] = (),
        deadline: Deadline | None = None,
    ) -> tuple[Plan, Usage]:
        sure = self.fallback.sure_plan(message, agents) if not history else None
        if sure is not None:  # "uppercase hello world": no model call, no wait
            return msgspec.structs.replace(sure, source="rules"), Usage()
        catalog = "\n".join(
            f"- {a.name}: {a.description}" + (f" Inputs: {a.input_hints}" if a.input_hints else "")
            for a in sorted(agents.values(), key=lambda a: a.name)
        )
        messages = [
            ChatMessage("system", SYSTEM_PROMPT.format(max_steps=max_steps, agents=catalog))
        ]
        for turn in history[-5:]:
            messages.append(ChatMessage("user", turn.message))
            messages.append(ChatMessage("assistant", turn.answer))
        messages.append(ChatMessage("user", message))
        try:
            draft, usage = await self.llm.structured(
                messages,
                plan_schema(tuple(sorted(agents)), max_steps),
                name="make_plan",
                description="The plan: the steps, their agents, instructions and dependencies.",
                deadline=deadline,
            )
        except LLMError as exc:
            plan = self._fall_back(message, agents, max_steps, "llm_error", str(exc), history)
            return plan, Usage()
        plan, reason = self._repair(draft, agents, max_steps)
        try:
            validate_plan(plan, agents, max_steps=max_steps)
        except PlanError as exc:
            return self._fall_back(message, agents, max_steps, "invalid", str(exc), history), usage
        if not plan.steps and agents:
            return self._fall_back(message, agents, max_steps, "empty", "no steps", history), usage
        check = check_llm_plan(plan, message, agents, self.fallback)
        if check.unusable:
            why = check.reason or "empty"
            detail = msgspec.json.encode(plan).decode()
            fallback = self._fall_back(message, agents, max_steps, why, detail, history)
            return fallback, usage
        plan, reason = check.plan, reason or check.reason
        if reason:
            PLAN_FALLBACKS.labels(f"repaired_{reason}").inc()
            log.info("llm plan repaired", reason=reason)
        return plan, usage

    def _fall_back(
        self,
        message: str,
        agents: Mapping[str, AgentInfo],
        max_steps: int,
        reason: str,
        detail: str,
        history: Sequence[ConversationTurn] = (),
    ) -> Plan:
        PLAN_FALLBACKS.labels(reason).inc()
        log.warning("llm plan unusable, using the local planner", reason=reason, detail=detail)
        plan = self.fallback.plan(message, agents, max_steps=max_steps, history=history)
        return msgspec.structs.replace(plan, source="fallback")

    @staticmethod
    def _repair(
        draft: _PlanDraft, agents: Mapping[str, AgentInfo], max_steps: int
    ) -> tuple[Plan, str]:
        """Drop steps for unknown agents and dangling dependencies; cut to ``max_steps``."""
        reason = ""
        drafts = draft.steps
        if len(drafts) > max_steps:
            drafts, reason = drafts[:max_steps], "too_many_steps"
        kept = [d for d in drafts if d.agent in agents]
        if len(kept) != len(drafts):
            reason = reason or "unknown_agent"
        ids = {d.id: safe_token(d.id) for d in kept}
        steps = []
        for d in kept:
            depends = [ids[x] for x in d.depends_on if x in ids and x != d.id]
            if len(depends) != len(d.depends_on):
                reason = reason or "unknown_dependency"
            steps.append(
                PlanStep(
                    id=ids[d.id],
                    agent=d.agent,
                    instruction=d.instruction,
                    depends_on=depends,
                    required=d.required,
                )
            )
        return Plan(steps=steps, source="llm"), reason
