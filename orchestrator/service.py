"""The orchestrator service: ``ai.orchestrator.converse`` and its two helpers, over NATS.

=============================  ============================================
subject                        does
=============================  ============================================
``ai.orchestrator.converse``   ConversationRequest -> ConversationReply
                               (progress events first, when asked for)
``ai.orchestrator.agents``     the live agent catalog (list of AgentInfo)
``ai.orchestrator.history``    HistoryRequest -> one user's conversation
=============================  ============================================

All three are served in queue group ``ai-orchestrator`` by every replica;
the service keeps no per-conversation state of its own. A conversation
request that carries a request id is claimed in JetStream first, so a retry
that lands on another replica is not run again (``claims.py``).
"""

from __future__ import annotations

from collections.abc import Collection

import structlog
from nats.aio.client import Client as NATS

from .claims import RequestClaims
from .core.catalog import ROLE_KEY, AgentCatalog
from .core.codec import encode
from .core.conversation import ConversationReply, ConversationRequest, HistoryReply, HistoryRequest
from .core.deadline import REPLY_MARGIN, work_deadline
from .core.discovery import ServiceResponder
from .core.endpoint import RETRY_GRACE, Endpoint, Request
from .core.envelopes import ErrorInfo
from .core.errors import SwitchboardError
from .core.requester import Requester
from .core.subjects import Subjects
from .core.tasks import stop_in_order
from .engine.conversation import ConversationEngine
from .engine.events import EventSink
from .engine.executor import Executor
from .engine.history import HistoryStore
from .engine.rounds import RoundLimits
from .llm.base import LLM
from .runtime.part import VERSION
from .runtime.settings import Settings

__all__ = ["OrchestratorService"]

log = structlog.get_logger("switchboard.orchestrator")


class OrchestratorService:
    """Everything the orchestrator process serves, wired to one requester."""

    def __init__(
        self,
        nc: NATS,
        requester: Requester,
        llm: LLM,
        settings: Settings,
        *,
        trusted_patterns: Collection[str] = (),
    ) -> None:
        """``trusted_patterns``: agent patterns known to be linear-time (see LocalPlanner)."""
        self.settings = settings
        self.subjects = Subjects(settings.subject_prefix)
        self.requester = requester
        self.llm = llm
        self.catalog = AgentCatalog(nc, refresh=settings.catalog_refresh)
        self.history = HistoryStore(
            nc,
            bucket=settings.history_bucket,
            max_turns=settings.history_turns,
            replicas=settings.history_replicas,
        )
        # With several replicas, a retry that lands on another one finds the request claimed
        # (see claims.py); one replica attaches retries in process either way.
        self.claims = (
            RequestClaims(
                nc,
                bucket=f"{settings.history_bucket}-claims",
                replicas=settings.history_replicas,
                max_value_size=settings.max_payload + 4096,
                error_body=_conversation_error,
            )
            if settings.replica_claims
            else None
        )
        self.engine = ConversationEngine(
            catalog=self.catalog,
            executor=Executor(
                requester,
                subjects=self.subjects,
                step_timeout=settings.step_timeout,
                retries=settings.step_retries,
                heartbeat=settings.heartbeat_interval,
                accept_timeout=settings.accept_timeout,
                max_calls=settings.max_calls,
            ),
            llm=llm,
            history=self.history,
            max_plan_steps=settings.max_plan_steps,
            limits=RoundLimits(
                max_rounds=settings.max_rounds,
                max_steps=settings.max_conversation_steps,
                max_tokens=settings.max_round_tokens,
            ),
            plan_budget=settings.llm_plan_timeout,
            answer_budget=settings.llm_answer_timeout,
            trusted_patterns=trusted_patterns,
            # The smaller of ours and the server's: a reply over either is not delivered.
            max_payload=min(settings.max_payload, nc.max_payload or settings.max_payload),
        )
        common = {
            "queue": self.subjects.orchestrator_queue,
            "max_concurrency": settings.max_concurrency,
            "max_backlog": settings.max_backlog,
            "max_payload": settings.max_payload,
            "max_inflight_bytes": settings.max_inflight_bytes,
            "subjects": self.subjects,
        }
        self.converse = Endpoint(
            nc,
            subject=self.subjects.converse,
            handler=self._converse,
            name="orchestrator",
            # A request with no deadline of its own gets conversation_timeout of work.
            default_timeout=settings.conversation_timeout + REPLY_MARGIN,
            error_body=_conversation_error,
            middleware=[self.claims.middleware] if self.claims else [],
            # With claims, a conversation given up as not accepted in time runs on: wherever
            # its retry lands, the claim makes it wait for this run's answer instead of a
            # second run. Without, it waits the usual grace for its retry to attach here.
            retry_grace=None if self.claims else RETRY_GRACE,
            **common,  # type: ignore[arg-type]
        )
        self.agents_endpoint = Endpoint(
            nc,
            subject=self.subjects.catalog,
            handler=self._agents,
            name="orchestrator-agents",
            default_timeout=10,
            **common,  # type: ignore[arg-type]
        )
        self.history_endpoint = Endpoint(
            nc,
            subject=self.subjects.history,
            handler=self._history,
            name="orchestrator-history",
            default_timeout=10,
            **common,  # type: ignore[arg-type]
        )
        self.endpoints = [self.converse, self.agents_endpoint, self.history_endpoint]
        self.responder = ServiceResponder(
            nc,
            name="orchestrator",
            version=VERSION,
            description="Switchboard orchestrator: plans with an LLM (or offline rules), runs "
            "agents in parallel, answers.",
            endpoints=self.endpoints,
            metadata={ROLE_KEY: "orchestrator"},
        )

    @property
    def running(self) -> bool:
        return all(e.running for e in self.endpoints)

    async def start(self) -> None:
        await self.history.start()
        if self.claims is not None:
            await self.claims.start()
        await self.catalog.start()
        for endpoint in self.endpoints:
            await endpoint.start()
        await self.responder.start()
        log.info(
            "orchestrator serving",
            subject=self.subjects.converse,
            agents=sorted(self.catalog.agents),
            llm=self.llm.provider,
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop advertising, then serving (in-flight work within ``grace``), then the rest.

        Cancelled half-way, it still stops everything, at once, then re-raises.
        """
        await stop_in_order(
            grace,
            self.responder.stop,
            *(endpoint.stop for endpoint in self.endpoints),
            self.catalog.stop,
            self.history.stop,
        )

    # -- handlers ----------------------------------------------------------------------------

    async def _converse(self, request: Request) -> bytes:
        conversation = request.decode(ConversationRequest)
        # The caller waits REPLY_MARGIN past the conversation's budget: work until then.
        deadline = work_deadline(request.deadline, conversation.timeout_s)
        events = EventSink(
            conversation.correlation_id,
            subject=self.subjects.events(conversation.correlation_id),
            publish=(
                self.requester.publisher(conversation.correlation_id)
                if self.settings.publish_events or conversation.watch
                else None
            ),
            progress=request.progress if request.wants_progress else None,
        )
        # The handler's task has its own context (see Endpoint): bind without a reset.
        structlog.contextvars.bind_contextvars(
            correlation_id=conversation.correlation_id, user_id=conversation.user_id
        )
        reply = await self.engine.converse(conversation, deadline=deadline, events=events)
        return encode(reply)

    async def _agents(self, request: Request) -> bytes:
        agents = await self.catalog.get()
        return encode(sorted(agents.values(), key=lambda a: a.name))

    async def _history(self, request: Request) -> bytes:
        query = request.decode(HistoryRequest)
        turns = await self.history.load(query.user_id, query.conversation_id)
        return encode(HistoryReply(conversation_id=query.conversation_id, turns=turns))


def _conversation_error(request: Request, error: ErrorInfo) -> bytes:
    return encode(
        ConversationReply(correlation_id=_correlation_id(request), answer="", error=error)
    )


def _correlation_id(request: Request) -> str:
    """The request's correlation id: its header's, else its body's (``nats req`` sends no
    header), else "" (a body too broken to read has none)."""
    if request.correlation_id:
        return request.correlation_id
    try:
        return request.decode(ConversationRequest).correlation_id
    except SwitchboardError:
        return ""
