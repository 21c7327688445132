"""One conversation, start to finish: plan, run, aggregate, remember.

The engine is stateless: everything about a conversation lives in its
arguments, its events and the history bucket, so any orchestrator replica can
answer any request and many conversations run at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence

import structlog

from ..core import tracing
from ..core.catalog import AgentCatalog, AgentInfo
from ..core.codec import DEFAULT_MAX_PAYLOAD
from ..core.conversation import (
    ConversationReply,
    ConversationRequest,
    ConversationTurn,
    Plan,
    StepResult,
)
from ..core.deadline import Deadline
from ..core.envelopes import Usage
from ..core.errors import PlanError, SwitchboardError
from ..llm.base import LLM, ToolCallingLLM
from ..metrics import CONVERSATION_DURATION, CONVERSATIONS, HISTORY_FAILURES, PLAN_STEPS
from .aggregator import Aggregator
from .answer_stream import answer_tokens
from .events import EventSink
from .executor import Executor
from .history import NEW_CONVERSATION, HistoryStore, Snapshot, turn_steps
from .plan import validate_plan
from .planner import LLMPlanner, LocalPlanner
from .reply import answered_detail, check_answer, reply_steps
from .rounds import RoundLimits, Rounds

__all__ = ["ConversationEngine"]

log = structlog.get_logger("switchboard.engine")

#: Most seconds the LLM may plan, and the share of the conversation's time it may take: a
#: plan that does not come in time is made by the local planner.
PLAN_BUDGET = 10.0
PLAN_SHARE = 0.3


class ConversationEngine:
    """Plans with the LLM (or offline rules), runs the plan, writes the answer."""

    def __init__(
        self,
        *,
        catalog: AgentCatalog,
        executor: Executor,
        llm: LLM,
        history: HistoryStore | None = None,
        max_plan_steps: int = 16,
        trusted_patterns: Collection[str] = (),
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        limits: RoundLimits | None = None,
        plan_budget: float = PLAN_BUDGET,
        answer_budget: float | None = None,
    ) -> None:
        """``max_payload``: the largest reply NATS carries (the answer's limit follows).
        ``limits``: when a conversation stops planning further rounds (``engine.rounds``).
        ``plan_budget``: most seconds the LLM may plan; ``answer_budget``: most seconds it
        may stitch an answer (see the ``llm_plan_timeout`` and ``llm_answer_timeout``
        settings)."""
        self.catalog = catalog
        self.max_payload = max_payload
        self.executor = executor
        self.llm = llm
        self.history = history
        self.max_plan_steps = max_plan_steps
        self.local_planner = LocalPlanner(trusted_patterns)
        self.llm_planner = None if llm.offline else LLMPlanner(llm, self.local_planner)
        self.plan_budget = plan_budget
        self.aggregator = Aggregator(llm, budget=answer_budget)
        self.rounds = Rounds(
            executor,
            self.local_planner,
            llm=llm if not llm.offline and isinstance(llm, ToolCallingLLM) else None,
            limits=limits or RoundLimits(),
            max_plan_steps=max_plan_steps,
        )

    async def converse(
        self, request: ConversationRequest, *, deadline: Deadline, events: EventSink
    ) -> ConversationReply:
        """Answer one request (the caller maps exceptions to error replies)."""
        started = time.perf_counter()
        outcome = "error"
        try:
            reply = await self._converse(request, deadline, events)
        except SwitchboardError as exc:
            outcome = exc.code.value  # as the reply says: too_large, bad_request ...
            raise
        else:
            outcome = "partial" if reply.partial else "ok"
            return reply
        finally:
            CONVERSATIONS.labels(outcome).inc()
            CONVERSATION_DURATION.observe(time.perf_counter() - started, tracing.exemplar())

    async def _await_agents(
        self,
        request: ConversationRequest,
        deadline: Deadline,
        agents: Mapping[str, AgentInfo],
        missing: list[str],
    ) -> tuple[Mapping[str, AgentInfo], list[str]]:
        """Give discovery a moment when agents that were here are missing: right after NATS
        comes back the agents reconnect after this replica, and the first question must not
        be refused. (A name no agent ever had is refused at once.)"""
        give_up = min(AGENT_WAIT_S, deadline.remaining() / 4)
        waited = 0.0
        while (missing or not agents) and waited < give_up:
            await asyncio.sleep(AGENT_POLL_S)
            waited += AGENT_POLL_S
            await self.catalog.refresh()
            agents = await self.catalog.get(request.agents)
            missing = sorted(set(request.agents or ()) - set(agents))
        return agents, missing

    async def _converse(
        self, request: ConversationRequest, deadline: Deadline, events: EventSink
    ) -> ConversationReply:
        started = time.perf_counter()
        known = await self._load_history(request, deadline)
        history = known.turns if known is not None else []
        agents = await self.catalog.get(request.agents)
        missing = sorted(set(request.agents or ()) - set(agents))
        if not self.catalog.agents or (missing and self.catalog.may_return(missing)):
            agents, missing = await self._await_agents(request, deadline, agents, missing)
        if missing:
            running = ", ".join(sorted(self.catalog.agents)) or "none"
            raise PlanError(
                f"The request names agents that are not running: {', '.join(missing)} "
                f"(running: {running})."
            )
        usage = Usage()
        plan: Plan
        if self.llm_planner is not None and agents:
            plan, used = await self.llm_planner.plan(
                request.message,
                agents,
                max_steps=self.max_plan_steps,
                history=history,
                deadline=deadline.earlier(
                    min(self.plan_budget, max(1.0, deadline.remaining() * PLAN_SHARE))
                ),
            )
            usage = usage + used
        else:
            plan = self.local_planner.plan(
                request.message, agents, max_steps=self.max_plan_steps, history=history
            )
        validate_plan(plan, agents, max_steps=self.max_plan_steps)
        PLAN_STEPS.labels(plan.source).observe(len(plan.steps))
        await events.emit("planned", detail=plan)
        outcome = await self.rounds.run(
            plan,
            message=request.message,
            correlation_id=request.correlation_id,
            user_id=request.user_id,
            agents=agents,
            history=history,
            deadline=deadline,
            events=events,
            spent=usage,
        )
        plan, results = outcome.plan, outcome.results
        answer, used = await self.aggregator.answer(
            request.message,
            plan,
            # A failure a later round made good is not news for the answer (the steps keep it).
            [r for r in results if r.id not in outcome.recovered] if outcome.recovered else results,
            history=history,
            deadline=deadline,
            available=", ".join(sorted(agents)),
            draft=outcome.draft,
            tokens=answer_tokens(events),
        )
        usage = usage + outcome.usage + used
        for result in results:
            if result.usage is not None:
                usage = usage + result.usage
        partial = outcome.partial
        answer_size = check_answer(answer, max_payload=self.max_payload)
        reply = ConversationReply(
            correlation_id=request.correlation_id,
            answer=answer,
            # Each output byte once: what the answer holds, the steps hold as a preview.
            steps=reply_steps(
                answer, results, answer_size=answer_size, max_payload=self.max_payload
            ),
            partial=partial,
            usage=usage,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            conversation_id=request.conversation_id,
        )
        await events.emit("answered", detail=answered_detail(answer, partial=partial))
        await self._save_history(request, answer, deadline, plan, results, known)
        return reply

    # Conversation memory is worth a little time, never the answer: a history bucket that
    # cannot answer (a NATS node down, quorum lost) costs at most HISTORY_BUDGET and is
    # logged; the conversation goes on without it.

    async def _load_history(
        self, request: ConversationRequest, deadline: Deadline
    ) -> Snapshot | None:
        """The conversation's turns so far (None: unknown, none are used)."""
        if not request.conversation_id or self.history is None:
            return None
        if request.conversation_id == request.correlation_id:
            # A conversation named by this request starts with it: nothing to read.
            return NEW_CONVERSATION
        try:
            async with asyncio.timeout(_history_budget(deadline)):
                return await self.history.read(request.user_id, request.conversation_id)
        except (SwitchboardError, TimeoutError) as exc:
            HISTORY_FAILURES.labels("load").inc()
            log.warning(
                "conversation history unavailable; answering without it",
                error=str(exc) or type(exc).__name__,
            )
            return None

    async def _save_history(
        self,
        request: ConversationRequest,
        answer: str,
        deadline: Deadline,
        plan: Plan,
        results: Sequence[StepResult],
        known: Snapshot | None,
    ) -> None:
        if not request.conversation_id or self.history is None:
            return
        turn = ConversationTurn(
            correlation_id=request.correlation_id,
            message=request.message,
            answer=answer,
            ts=time.time(),
            steps=turn_steps(plan, results),
        )
        try:
            async with asyncio.timeout(_history_budget(deadline)):
                await self.history.append(
                    request.user_id, request.conversation_id, turn, known=known
                )
        except (SwitchboardError, TimeoutError) as exc:
            HISTORY_FAILURES.labels("save").inc()
            log.warning("conversation turn not saved", error=str(exc) or type(exc).__name__)


#: Most time conversation memory may take, per load or save.
HISTORY_BUDGET = 2.0
#: Most seconds a conversation waits for agents it needs to appear in the catalog (a quarter
#: of its budget at most), and how often it looks again.
AGENT_WAIT_S = 2.0
AGENT_POLL_S = 0.25


def _history_budget(deadline: Deadline) -> float:
    return max(0.05, min(HISTORY_BUDGET, deadline.remaining() * 0.25))
