"""The BFF's side of NATS: one Requester talking to the orchestrator.

Each request carries one deadline: the conversation's own (``timeout_s``,
enforced by the orchestrator) plus a margin for the reply to travel back, so
a partial answer made at the deadline still arrives. The orchestrator is
asked for heartbeats, so a replica that dies mid-conversation is noticed in
seconds; a request the orchestrator refused as shutting down or overloaded,
that found no responder, or that no replica accepted in time (a frozen one
still holds its subscription) is retried once while time remains.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from switchboard.orchestrator import (
    REPLY_MARGIN,
    AgentInfo,
    ConversationReply,
    ConversationRequest,
    Deadline,
    HistoryReply,
    HistoryRequest,
    ProgressEvent,
    Requester,
    RequestOptions,
    SwitchboardError,
    decode,
    encode,
    reply_deadline,
)

from .schemas import ChatRequest

__all__ = ["REPLY_MARGIN", "Gateway"]


class Gateway:
    def __init__(
        self,
        requester: Requester,
        *,
        conversation_timeout: float = 60.0,
        heartbeat: float = 1.0,
        accept_timeout: float = 5.0,
    ) -> None:
        self.requester = requester
        self.subjects = requester.subjects
        self.conversation_timeout = conversation_timeout
        self.heartbeat = heartbeat
        self.accept_timeout = accept_timeout
        self.options = RequestOptions(heartbeat=heartbeat, accept_timeout=accept_timeout)

    def _request(
        self, user_id: str, body: ChatRequest, correlation_id: str
    ) -> tuple[ConversationRequest, float]:
        timeout = min(body.timeout_s or self.conversation_timeout, 600.0)
        request = ConversationRequest(
            correlation_id=correlation_id,
            user_id=user_id,
            message=body.message,
            conversation_id=body.conversation_id,
            timeout_s=timeout,
            agents=body.agents or None,
        )
        return request, timeout

    async def chat(
        self, user_id: str, body: ChatRequest, *, correlation_id: str
    ) -> ConversationReply:
        request, timeout = self._request(user_id, body, correlation_id)
        payload = encode(request)
        deadline = reply_deadline(timeout)
        for attempt in (1, 2):
            try:
                msg = await self.requester.request(
                    self.subjects.converse,
                    payload,
                    correlation_id=correlation_id,
                    deadline=deadline,
                    options=self.options,
                )
            except SwitchboardError as exc:
                if attempt == 1 and exc.retryable and deadline.remaining() > 1.0:
                    await asyncio.sleep(0.1)
                    continue
                raise
            return decode(msg.data, ConversationReply, max_bytes=None)
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream(
        self, user_id: str, body: ChatRequest, *, correlation_id: str
    ) -> AsyncIterator[ProgressEvent | ConversationReply]:
        """The conversation's progress events, then its reply."""
        request, timeout = self._request(user_id, body, correlation_id)
        async with self.requester.stream(
            self.subjects.converse,
            request,
            ConversationReply,
            correlation_id=correlation_id,
            deadline=reply_deadline(timeout),
            options=self.options,
        ) as events:
            async for item in events:
                yield item

    async def agents(self, correlation_id: str) -> list[AgentInfo]:
        msg = await self.requester.request(
            f"{self.subjects.prefix}.orchestrator.agents",
            b"{}",
            correlation_id=correlation_id,
            deadline=Deadline.after(10),
        )
        return decode(msg.data, list[AgentInfo], max_bytes=None)

    async def history(
        self, user_id: str, conversation_id: str, *, correlation_id: str
    ) -> HistoryReply:
        return await self.requester.call(
            f"{self.subjects.prefix}.orchestrator.history",
            HistoryRequest(user_id=user_id, conversation_id=conversation_id),
            HistoryReply,
            correlation_id=correlation_id,
            deadline=Deadline.after(10),
        )
