"""The BFF's side of NATS: one ConversationClient talking to the orchestrator.

Each conversation has one time budget (the body's ``timeout_s``, or the
configured default, at most 600 s) that the orchestrator enforces; the client
waits the core's reply margin longer, so a partial answer made when the budget
runs out still arrives. The orchestrator is asked for heartbeats, so a replica
that dies mid-conversation is noticed in seconds; a request the orchestrator
refused as shutting down or overloaded, that found no responder, or that no
replica accepted in time (a frozen one still holds its subscription) is
retried once while time remains.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from switchboard.orchestrator import (
    REPLY_MARGIN,
    AgentInfo,
    ConversationClient,
    ConversationReply,
    ErrorCode,
    HistoryReply,
    ProgressEvent,
    RemoteError,
    Requester,
)

from .schemas import ChatRequest

__all__ = ["REPLY_MARGIN", "Gateway", "conversation_of", "nothing_answered"]

#: The longest budget a chat request may ask for, in seconds.
MAX_TIMEOUT = 600.0


def conversation_of(body: ChatRequest, correlation_id: str) -> str:
    """The conversation a chat request belongs to: the one it names, or a new one named by
    its own correlation id. Every chat is a turn of a conversation, so its history can be
    read back (``GET /v1/conversations/{id}``) with the id the reply gives."""
    return body.conversation_id or correlation_id


def nothing_answered(reply: ConversationReply) -> RemoteError | None:
    """The error to answer with when every step of the plan failed, else None.

    Such a reply is not an answer: over HTTP it is a problem (``agent_error``, 502, or the
    code every step failed with, e.g. ``no_responders``), whose detail names the agents and
    what they said -- not the plan's internal step ids. A partly answered question stays a
    200 with ``partial: true``, and so does one whose time ran out (``timeout``): the budget
    is the caller's, what was done in it is its answer.
    """
    failed = [step for step in reply.steps if step.status == "failed"]
    if not failed or any(step.status == "ok" for step in reply.steps):
        return None
    codes = {step.error.code if step.error else ErrorCode.AGENT_ERROR for step in failed}
    if ErrorCode.TIMEOUT in codes:
        return None
    code = codes.pop() if len(codes) == 1 else ErrorCode.AGENT_ERROR
    said = "; ".join(
        f"{step.agent}: {step.error.message if step.error else 'failed'}" for step in failed
    )
    return RemoteError(
        code,
        f"No agent could answer this ({said}).",
        correlation_id=reply.correlation_id,
    )


class Gateway:
    """What the HTTP routes ask of the orchestrator, in the BFF's terms (a ChatRequest)."""

    def __init__(
        self,
        requester: Requester,
        *,
        conversation_timeout: float = 60.0,
        heartbeat: float = 1.0,
        accept_timeout: float = 5.0,
    ) -> None:
        self.conversation_timeout = conversation_timeout
        self.client = ConversationClient(
            requester,
            default_timeout=conversation_timeout,
            heartbeat=heartbeat,
            accept_timeout=accept_timeout,
            retries=1,
        )

    def _timeout(self, body: ChatRequest) -> float:
        return min(body.timeout_s or self.conversation_timeout, MAX_TIMEOUT)

    async def chat(
        self, user_id: str, body: ChatRequest, *, correlation_id: str
    ) -> ConversationReply:
        """The conversation's reply (see :meth:`ConversationClient.ask` for the errors).

        Raises:
            RemoteError: besides the client's errors, no step succeeded (:func:`nothing_answered`).
        """
        reply = await self.client.ask(
            body.message,
            user_id=user_id,
            correlation_id=correlation_id,
            conversation_id=conversation_of(body, correlation_id),
            agents=body.agents,
            timeout=self._timeout(body),
        )
        if (error := nothing_answered(reply)) is not None:
            raise error
        return reply

    async def stream(
        self, user_id: str, body: ChatRequest, *, correlation_id: str
    ) -> AsyncIterator[ProgressEvent | ConversationReply]:
        """The conversation's progress events, then its reply."""
        async with self.client.stream(
            body.message,
            user_id=user_id,
            correlation_id=correlation_id,
            conversation_id=conversation_of(body, correlation_id),
            agents=body.agents,
            timeout=self._timeout(body),
        ) as events:
            async for item in events:
                if isinstance(item, ConversationReply) and (error := nothing_answered(item)):
                    raise error  # the events said what failed; the end is a problem
                yield item

    async def agents(self, correlation_id: str) -> list[AgentInfo]:
        return await self.client.agents(correlation_id=correlation_id)

    async def history(
        self, user_id: str, conversation_id: str, *, correlation_id: str
    ) -> HistoryReply:
        return await self.client.history(user_id, conversation_id, correlation_id=correlation_id)
