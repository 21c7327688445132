"""``POST /v1/chat`` (the answer as JSON) and ``POST /v1/chat/stream`` (SSE).

The correlation id comes from the ``correlation_id`` dependency, bound into the
log context for the whole request (:mod:`~switchboard.bff.context`); a slot in
flight from :func:`~switchboard.bff.admission.admit`, given back on every path
that ends the request; and the answer's bytes held in the same limiter until
they are written to the client (a large answer weighs what it weighs).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from litestar import Request, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage

from switchboard.orchestrator import (
    ConversationReply,
    ProgressEvent,
    SwitchboardError,
    encode,
    encode_event,
)

from ..admission import admit
from ..disconnect import ClientGone, until_disconnected
from ..limits import Hold
from ..problems import CHAT_PROBLEMS, client_gone, problem_for, problem_responses
from ..schemas import ChatRequest
from ..state import BffState

__all__ = ["chat", "chat_stream"]

log = structlog.get_logger("switchboard.bff")


@post(
    "/v1/chat",
    summary="Ask and wait for the answer",
    tags=["chat"],
    status_code=200,
    responses=problem_responses(CHAT_PROBLEMS),
)
async def chat(
    request: Request[Any, Any, Any],
    data: JSONBody[ChatRequest],
    bff: NamedDependency[BffState],
    user: NamedDependency[str],
    correlation_id: NamedDependency[str],
) -> Response[ConversationReply]:
    """The answer as JSON: correlation id, answer, per-step results and timings."""
    slot = admit(bff.limiter, user)
    try:
        reply = await until_disconnected(
            request.receive, bff.gateway.chat(user, data, correlation_id=correlation_id)
        )
    except ClientGone:
        log.info("client disconnected; conversation cancelled")
        return client_gone(correlation_id)
    except SwitchboardError as exc:
        log.info("chat failed", code=exc.code.value, error=str(exc))
        return problem_for(exc, correlation_id=correlation_id)
    finally:
        slot.release()
    # Given back once the response is sent, or when it is dropped if sending fails.
    hold = bff.limiter.hold(len(encode(reply)))
    return Response(
        reply,
        headers={"X-Correlation-Id": correlation_id},
        background=BackgroundTask(_on_loop, hold.release),
    )


@post(
    "/v1/chat/stream",
    summary="Ask and follow the answer as it is built (SSE)",
    tags=["chat"],
    media_type="text/event-stream",
    status_code=200,
    responses=problem_responses(CHAT_PROBLEMS),
)
async def chat_stream(
    data: JSONBody[ChatRequest],
    bff: NamedDependency[BffState],
    user: NamedDependency[str],
    correlation_id: NamedDependency[str],
) -> Response[Any]:
    """Server-Sent Events: ``planned``, ``step_started``, ``step_progress``,
    ``step_finished``, ``step_failed``, ``call_started``, ``call_finished``, ``replanned`` (a
    further round), ``answered`` (ProgressEvent data), ``token`` (text of an answer as a model
    writes it: a step's, or with no step the answer's own), then one ``reply`` event with the
    whole ConversationReply -- or an ``error`` event with a problem body."""
    slot = admit(bff.limiter, user)

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        try:
            async for item in bff.gateway.stream(user, data, correlation_id=correlation_id):
                if isinstance(item, ProgressEvent):
                    yield ServerSentEventMessage(
                        event=item.kind, id=str(item.seq), data=encode_event(item).decode()
                    )
                else:
                    body = encode(item)
                    # Held until the stream ends: the reply is its last event.
                    holds.append(bff.limiter.hold(len(body)))
                    yield ServerSentEventMessage(event="reply", data=body.decode())
        except SwitchboardError as exc:
            body = problem_for(exc, correlation_id=correlation_id).content
            yield ServerSentEventMessage(event="error", data=bytes(body).decode())
        finally:
            slot.release()
            for hold in holds:
                hold.release()

    holds: list[Hold] = []
    stream = events()
    # A client that hangs up before the stream starts: the generator never runs, nor its
    # ``finally``. The response's background task gives the slot back then; if sending
    # fails outright, the slot goes back when the dropped generator is collected.
    weakref.finalize(stream, slot.release)
    return ServerSentEvent(
        stream,
        headers={"X-Correlation-Id": correlation_id, "Cache-Control": "no-store"},
        background=BackgroundTask(_on_loop, slot.release),
    )


async def _on_loop(release: Callable[[], None]) -> None:
    """A response's background task: litestar runs a plain function in a thread pool,
    where giving back a slot would race with the limiter (and cost a thread hop)."""
    release()
