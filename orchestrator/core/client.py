"""The conversation client: ask the orchestrator, or follow an answer as it is built.

The one client of ``ai.orchestrator.converse`` (and of the catalog and history subjects
beside it): the BFF, ``switchboard ask`` and the bench talk to the orchestrator through
it, over a :class:`~switchboard.orchestrator.core.requester.Requester`. It owns what
every caller used to write for itself: the :class:`ConversationRequest`, the time budget
and the reply margin (:func:`~switchboard.orchestrator.core.deadline.reply_deadline`),
heartbeats, one retry of a refusal that did nothing, and decoding the typed replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import math

from . import tracing
from .catalog import AgentInfo
from .conversation import ConversationReply, ConversationRequest, HistoryReply, HistoryRequest
from .deadline import Deadline, reply_deadline
from .errors import NoRespondersError, RequestTimeoutError, SwitchboardError, TimeoutPhase
from .options import RequestOptions, new_request_id
from .requester import Requester
from .stream import EventStream
from .subjects import new_correlation_id

__all__ = ["ConversationClient"]

#: A retry is worth sending only with at least this much of the deadline left (seconds).
_RETRY_LEFT = 1.0
#: Pause before the first retry: long enough for a restarting replica to drop out of the
#: group; each further pause is twice the last, up to the most.
_RETRY_PAUSE = 0.1
_RETRY_PAUSE_MAX = 2.0


class ConversationClient:
    """Conversations with the orchestrator, for any process that has a :class:`Requester`.

    ::

        async with Requester(nc) as requester:
            client = ConversationClient(requester)
            reply = await client.ask("what is 17*23?", user_id="me", timeout=30)
            print(reply.answer)

            async with client.stream("what time is it in Tokyo?", user_id="me") as events:
                async for item in events:
                    match item:
                        case ConversationReply(answer=answer):
                            print(answer)  # the final reply, always last
                        case _:
                            print(item.kind, item.step, item.agent)  # a ProgressEvent

    ``timeout`` is the conversation's budget in seconds (``default_timeout`` when not
    given). It travels in the request (``timeout_s``) and the client waits
    :data:`~switchboard.orchestrator.core.deadline.REPLY_MARGIN` longer, so the answer
    the orchestrator makes when the budget runs out -- a partial one -- still arrives.

    ``heartbeat`` (seconds) asks the orchestrator to acknowledge and heartbeat, so a
    replica that died or froze is noticed in seconds; ``accept_timeout`` then bounds the
    wait for one to take the request. :meth:`ask` sends a request again, up to
    ``retries`` times while a second is left, when it was refused without being worked
    on (overloaded, shutting down, not accepted in time); every attempt carries the
    same request id, so one that was in fact delivered is not run twice. With
    ``retries`` at all (the default), no responders is tried again with growing
    pauses (0.1 s doubling to 2 s) while a second is left: the orchestrators may be
    subscribing again after NATS came back. A replica that went silent mid-way
    (died) gets its conversation cancelled everywhere, and the question is asked
    once more, as new work. :meth:`stream` never retries: its events may already be
    on the screen.
    """

    def __init__(
        self,
        requester: Requester,
        *,
        default_timeout: float = 60.0,
        heartbeat: float | None = None,
        accept_timeout: float | None = None,
        retries: int = 1,
    ) -> None:
        self.requester = requester
        self.subjects = requester.subjects
        self.default_timeout = default_timeout
        self.retries = retries
        self.options = RequestOptions(heartbeat=heartbeat, accept_timeout=accept_timeout)

    async def ask(
        self,
        message: str,
        *,
        user_id: str,
        correlation_id: str | None = None,
        conversation_id: str | None = None,
        agents: list[str] | None = None,
        timeout: float | None = None,
    ) -> ConversationReply:
        """Send ``message`` as ``user_id`` and return the orchestrator's reply.

        A partial answer (a required step failed) is a reply, with ``partial`` set.

        Raises:
            RemoteError: the orchestrator answered with an error (``.code``: bad_request
                for an invalid request or an unknown agent, timeout, internal ...).
            RequestTimeoutError: no reply before the deadline (the budget plus the margin).
            NoRespondersError, OverloadedError, ShuttingDownError: refused, also when
                tried again.
            DecodeError: the reply is not a ConversationReply.
            ValueError: ``timeout`` is not a number of seconds that can be a budget.
        """
        request, deadline = self._request(
            message, user_id, correlation_id, conversation_id, agents, timeout
        )
        # One id for every attempt: an orchestrator that has the first attempt in hand (or
        # answered it lately) attaches the retry to it instead of running it twice.
        options = self.options.attempt_of(new_request_id())
        attempt = 0
        sent = 0  # every attempt, whatever ended the last one (a retry span from the second)
        pause = _RETRY_PAUSE
        replaced = False
        while True:
            sent += 1
            try:
                with tracing.retry_span(sent):
                    return await self.requester.call(
                        self.subjects.converse,
                        request,
                        ConversationReply,
                        correlation_id=request.correlation_id,
                        deadline=deadline,
                        options=options,
                    )
            except NoRespondersError:
                # Nothing ran. Right after NATS comes back, the requests it buffered go out
                # before the orchestrators have subscribed again: wait for them, backing off,
                # while the budget lasts (not counted against ``retries``).
                if self.retries == 0 or deadline.remaining() <= _RETRY_LEFT + pause:
                    raise
            except RequestTimeoutError as exc:
                silent = exc.phase is TimeoutPhase.SILENT
                if silent and self.retries and not replaced and deadline.remaining() > _RETRY_LEFT:
                    # The replica that took it died (or froze) mid-conversation: its
                    # heartbeats stopped. Cancel what it started -- its agents' work would
                    # run on for nobody -- then ask again, as new work, on one that lives.
                    replaced = True
                    await self._cancel_conversation(request.correlation_id)
                    options = self.options.attempt_of(new_request_id())
                    continue
                attempt += 1
                if attempt > self.retries or not exc.retryable:
                    raise
                if deadline.remaining() <= _RETRY_LEFT:
                    raise
            except SwitchboardError as exc:
                attempt += 1
                if attempt > self.retries or not exc.retryable:
                    raise
                if deadline.remaining() <= _RETRY_LEFT:
                    raise
            await asyncio.sleep(pause)
            pause = min(2 * pause, _RETRY_PAUSE_MAX)

    async def _cancel_conversation(self, correlation_id: str) -> None:
        """A conversation-wide cancel notice: every worker drops that conversation's work."""
        with contextlib.suppress(SwitchboardError):  # best effort: the retry goes on
            await self.requester.publish(
                self.subjects.cancel(correlation_id), b"", correlation_id=correlation_id
            )

    def stream(
        self,
        message: str,
        *,
        user_id: str,
        correlation_id: str | None = None,
        conversation_id: str | None = None,
        agents: list[str] | None = None,
        timeout: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[EventStream[ConversationReply]]:
        """:meth:`ask`, following the answer: progress events, then the reply, last.

        The request is sent when the block is entered; leaving the block early cancels
        the conversation (the orchestrator and its agents are told to stop). Errors are
        raised from the iteration (see :class:`EventStream`) or, for a refusal, on entry.

        Raises:
            ValueError: ``timeout`` is not a number of seconds that can be a budget.
        """
        request, deadline = self._request(
            message, user_id, correlation_id, conversation_id, agents, timeout
        )
        return self.requester.stream(
            self.subjects.converse,
            request,
            ConversationReply,
            correlation_id=request.correlation_id,
            deadline=deadline,
            options=self.options,
        )

    async def agents(self, *, correlation_id: str, timeout: float = 10.0) -> list[AgentInfo]:
        """The agents the orchestrator can plan with now (its live catalog), by name.

        Raises:
            RequestTimeoutError, NoRespondersError, RemoteError: as :meth:`ask`.
        """
        return await self.requester.call(
            self.subjects.catalog,
            {},
            list[AgentInfo],
            correlation_id=correlation_id,
            deadline=Deadline.after(timeout),
        )

    async def history(
        self, user_id: str, conversation_id: str, *, correlation_id: str, timeout: float = 10.0
    ) -> HistoryReply:
        """``user_id``'s turns of conversation ``conversation_id`` (none: an empty list).

        Raises:
            RemoteError: bad_request for an id that is not a subject-safe token.
            RequestTimeoutError, NoRespondersError: as :meth:`ask`.
        """
        return await self.requester.call(
            self.subjects.history,
            HistoryRequest(user_id=user_id, conversation_id=conversation_id),
            HistoryReply,
            correlation_id=correlation_id,
            deadline=Deadline.after(timeout),
        )

    def _request(
        self,
        message: str,
        user_id: str,
        correlation_id: str | None,
        conversation_id: str | None,
        agents: list[str] | None,
        timeout: float | None,
    ) -> tuple[ConversationRequest, Deadline]:
        budget = self.default_timeout if timeout is None else timeout
        if not 0 < budget < math.inf:  # also NaN
            raise ValueError(f"A conversation budget of {budget} s is not a time to wait.")
        request = ConversationRequest(
            correlation_id=correlation_id or new_correlation_id(user_id),
            user_id=user_id,
            message=message,
            conversation_id=conversation_id,
            timeout_s=budget,
            agents=agents or None,
        )
        return request, reply_deadline(budget)

    def __repr__(self) -> str:
        return f"<ConversationClient {self.subjects.converse} via {self.requester!r}>"
