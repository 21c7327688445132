"""The typed stream: progress events, then the final reply, errors from the one tree."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from switchboard.orchestrator.core import (
    AgentError,
    AgentResult,
    AgentTask,
    Deadline,
    DecodeError,
    ErrorCode,
    EventStream,
    RemoteError,
    StepProgressEvent,
    encode,
    encode_event,
)
from switchboard.orchestrator.core import headers as h
from switchboard.orchestrator.core.endpoint import Endpoint, Request
from switchboard.orchestrator.core.requester import Requester
from tests.helpers import eventually, metric

TASK = AgentTask(correlation_id="conv-s-1", task_id="s1", agent="worker", instruction="go")


def event(n: int) -> StepProgressEvent:
    return StepProgressEvent(correlation_id="conv-s-1", step="s1", agent="worker", detail=n)


async def serve(nc: NATS, handler) -> Endpoint:  # type: ignore[no-untyped-def]
    endpoint = Endpoint(nc, subject="svc.stream", queue="q-stream", handler=handler, name="stream")
    await endpoint.start()
    await nc.flush()
    return endpoint


async def collect(requester: Requester, subject: str, into: list[object]) -> None:
    """Stream TASK to ``subject``, appending every item to ``into`` as it comes."""
    async with requester.stream(
        subject, TASK, AgentResult, correlation_id="conv-s-1", deadline=Deadline.after(5)
    ) as events:
        async for item in events:
            into.append(item)


def result(request: Request) -> bytes:
    task = request.decode(AgentTask)
    return encode(AgentResult(correlation_id=task.correlation_id, task_id=task.task_id, ok=True))


async def test_progress_events_then_the_final_reply(
    nats_client: NATS, requester: Requester
) -> None:
    async def handler(request: Request) -> bytes:
        for n in (1, 2):
            await request.progress(encode_event(event(n)))
        return result(request)

    endpoint = await serve(nats_client, handler)
    async with requester.stream(
        "svc.stream", TASK, AgentResult, correlation_id="conv-s-1", deadline=Deadline.after(5)
    ) as events:
        assert isinstance(events, EventStream)
        items = [item async for item in events]
    assert items == [
        event(1),
        event(2),
        AgentResult(correlation_id="conv-s-1", task_id="s1", ok=True),
    ]
    assert len(requester.tracker) == 0
    await endpoint.stop()


async def test_an_error_reply_is_raised_after_the_progress_before_it(
    nats_client: NATS, requester: Requester
) -> None:
    async def handler(request: Request) -> bytes:
        await request.progress(encode_event(event(1)))
        raise AgentError("The worker cannot do that.")

    endpoint = await serve(nats_client, handler)
    got: list[object] = []
    with pytest.raises(RemoteError) as caught:
        await collect(requester, "svc.stream", got)
    assert got == [event(1)]
    assert caught.value.code is ErrorCode.AGENT_ERROR
    assert caught.value.correlation_id == "conv-s-1"
    assert str(caught.value) == "The worker cannot do that."
    await endpoint.stop()


async def test_leaving_early_cancels_the_request_and_tells_the_worker(
    nats_client: NATS, requester: Requester
) -> None:
    cancelled = asyncio.Event()

    async def handler(request: Request) -> bytes:
        await request.progress(encode_event(event(1)))
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return result(request)

    endpoint = await serve(nats_client, handler)
    sent = metric("switchboard_cancel_notices_total", direction="sent")
    async with requester.stream(
        "svc.stream", TASK, AgentResult, correlation_id="conv-s-1", deadline=Deadline.after(60)
    ) as events:
        async for item in events:
            assert item == event(1)
            break
    assert len(requester.tracker) == 0
    await asyncio.wait_for(cancelled.wait(), 5)
    assert metric("switchboard_cancel_notices_total", direction="sent") == sent + 1
    await eventually(lambda: endpoint.in_flight == 0)
    await endpoint.stop()


async def test_a_progress_message_that_is_not_an_event_is_skipped(
    nats_client: NATS, requester: Requester
) -> None:
    async def odd(msg: Msg) -> None:
        for data in (b"not json", b'{"kind": "teleported"}', encode_event(event(1))):
            await nats_client.publish(msg.reply, data, headers={h.KIND: "progress"})
        await nats_client.publish(
            msg.reply, encode(AgentResult(correlation_id="c", task_id="s1", ok=True))
        )

    await nats_client.subscribe("svc.odd", cb=odd)
    async with requester.stream(
        "svc.odd", TASK, AgentResult, correlation_id="conv-s-1", deadline=Deadline.after(5)
    ) as events:
        items = [item async for item in events]
    assert items == [event(1), AgentResult(correlation_id="c", task_id="s1", ok=True)]
    assert events.skipped == 2


async def test_a_final_reply_that_is_not_the_reply_type_is_a_decode_error(
    nats_client: NATS, requester: Requester
) -> None:
    async def wrong(msg: Msg) -> None:
        await msg.respond(b'{"answer": "not an AgentResult"}')

    await nats_client.subscribe("svc.wrong", cb=wrong)
    got: list[object] = []
    with pytest.raises(DecodeError, match="AgentResult"):
        await collect(requester, "svc.wrong", got)
    assert got == []
    assert len(requester.tracker) == 0
