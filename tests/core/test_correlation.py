"""Correlation routing against a real nats-server: every reply reaches exactly its waiter."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from switchboard.orchestrator.core import Deadline, RequestOptions
from switchboard.orchestrator.core import headers as h
from switchboard.orchestrator.core.errors import (
    ErrorCode,
    NoRespondersError,
    OverloadedError,
    RemoteError,
    RequestTimeoutError,
    ShuttingDownError,
    TimeoutPhase,
)
from switchboard.orchestrator.core.requester import Requester
from tests.helpers import eventually, metric


async def echo_responder(nc: NATS, subject: str, *, delay: float = 0.0) -> None:
    """A plain nats-py responder: replies with the request payload and its correlation id."""

    async def reply(msg: Msg) -> None:
        if delay:
            await asyncio.sleep(delay)
        cid = (msg.headers or {}).get(h.CORRELATION_ID, "")
        await msg.respond(json.dumps({"echo": msg.data.decode(), "cid": cid}).encode())

    await nc.subscribe(subject, cb=reply)
    await nc.flush()


async def test_every_reply_reaches_its_own_waiter_1000_users_x_10(
    nats_client: NATS, requester: Requester
) -> None:
    await echo_responder(nats_client, "svc.echo")

    async def user(u: int) -> None:
        async def one(i: int) -> None:
            cid = f"conv-user{u}-{i}"
            payload = f"user {u} question {i}"
            msg = await requester.request(
                "svc.echo", payload.encode(), correlation_id=cid, deadline=Deadline.after(60)
            )
            assert json.loads(msg.data) == {"echo": payload, "cid": cid}

        await asyncio.gather(*(one(i) for i in range(10)))

    await asyncio.gather(*(user(u) for u in range(1000)))
    assert len(requester.tracker) == 0
    assert requester.pending() == []


@pytest.mark.parametrize(
    "arguments",
    [
        # Deadlines built by hand: Deadline.after() refuses these timeouts itself.
        {"deadline": Deadline(float("inf"))},
        {"deadline": Deadline(float("nan"))},
        {"deadline": Deadline(1e308)},
        {"deadline": Deadline.after(10), "options": RequestOptions(heartbeat=float("inf"))},
    ],
)
async def test_a_request_that_cannot_be_sent_leaves_nothing_waiting(
    nats_client: NATS, requester: Requester, arguments: dict[str, Any]
) -> None:
    # The deadline header was built after the entry was registered: an OverflowError
    # there left a waiter registered for a request never sent ("pending abandoned").
    await echo_responder(nats_client, "svc.echo")
    with pytest.raises(ValueError, match="cannot be"):
        await requester.request("svc.echo", b"{}", correlation_id="conv-u-1", **arguments)
    assert len(requester.tracker) == 0
    assert requester.pending() == []
    msg = await requester.request(
        "svc.echo", b"{}", correlation_id="conv-u-2", deadline=Deadline.after(10)
    )
    assert json.loads(msg.data)["cid"] == "conv-u-2"


@pytest.mark.parametrize("deadline", [Deadline(-1.0), Deadline(float("-inf")), Deadline.after(-5)])
async def test_a_deadline_already_passed_times_out_at_once_and_leaves_nothing(
    nats_client: NATS, requester: Requester, deadline: Deadline
) -> None:
    await echo_responder(nats_client, "svc.echo")
    with pytest.raises(RequestTimeoutError):
        await asyncio.wait_for(
            requester.request("svc.echo", b"{}", correlation_id="conv-u-3", deadline=deadline), 2
        )
    assert len(requester.tracker) == 0


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), 1e308])
def test_a_timeout_that_cannot_be_a_deadline_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="cannot be a deadline"):
        Deadline.after(seconds)


async def test_no_responders_fails_at_once(requester: Requester) -> None:
    before = metric("switchboard_correlation_no_responders_total", target="nobody.home")
    started = time.monotonic()
    with pytest.raises(NoRespondersError) as caught:
        await requester.request(
            "nobody.home", b"{}", correlation_id="conv-u-1", deadline=Deadline.after(10)
        )
    assert time.monotonic() - started < 2.0  # a fraction of the 10 s deadline
    assert caught.value.correlation_id == "conv-u-1"
    assert caught.value.subject == "nobody.home"
    assert caught.value.code is ErrorCode.NO_RESPONDERS
    assert metric("switchboard_correlation_no_responders_total", target="nobody.home") == before + 1
    assert len(requester.tracker) == 0


async def test_timeout_names_the_correlation_id_and_subject(
    nats_client: NATS, requester: Requester
) -> None:
    await nats_client.subscribe("svc.silent")  # takes requests, never answers
    before = metric("switchboard_correlation_timeouts_total", target="svc.silent", phase="deadline")
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError) as caught:
        await requester.request(
            "svc.silent", b"{}", correlation_id="conv-u-7", deadline=Deadline.after(0.3)
        )
    elapsed = time.monotonic() - started
    assert 0.29 <= elapsed < 5.0
    assert "conv-u-7" in str(caught.value)
    assert "svc.silent" in str(caught.value)
    assert caught.value.phase is TimeoutPhase.DEADLINE
    assert isinstance(caught.value, TimeoutError)  # also the builtin
    assert (
        metric("switchboard_correlation_timeouts_total", target="svc.silent", phase="deadline")
        == before + 1
    )
    assert len(requester.tracker) == 0


async def test_a_late_reply_is_counted_and_changes_nothing(
    nats_client: NATS, requester: Requester
) -> None:
    await echo_responder(nats_client, "svc.slow", delay=0.5)
    late_before = metric("switchboard_correlation_stray_replies_total", reason="late")
    with pytest.raises(RequestTimeoutError):
        await requester.request(
            "svc.slow", b"x", correlation_id="conv-u-2", deadline=Deadline.after(0.1)
        )
    await eventually(
        lambda: (
            metric("switchboard_correlation_stray_replies_total", reason="late") == late_before + 1
        )
    )
    assert len(requester.tracker) == 0
    # The consumer still routes normally afterwards.
    msg = await requester.request(
        "svc.slow", b"y", correlation_id="conv-u-3", deadline=Deadline.after(5)
    )
    assert json.loads(msg.data)["echo"] == "y"


async def test_a_forged_reply_is_counted_as_unknown(
    nats_client: NATS, requester: Requester
) -> None:
    before = metric("switchboard_correlation_stray_replies_total", reason="unknown")
    await nats_client.publish(requester.consumer.reply_subject("forgedtoken123"), b"evil")
    await eventually(
        lambda: (
            metric("switchboard_correlation_stray_replies_total", reason="unknown") == before + 1
        )
    )


async def test_a_cancelled_waiter_leaves_no_entry_and_no_task(
    nats_client: NATS, requester: Requester
) -> None:
    await nats_client.subscribe("svc.silent")
    tasks_before = asyncio.all_tasks()
    cancelled_before = metric("switchboard_correlation_cancelled_total", target="svc.silent")
    task = asyncio.create_task(
        requester.request(
            "svc.silent", b"{}", correlation_id="conv-u-9", deadline=Deadline.after(30)
        )
    )
    await eventually(lambda: len(requester.tracker) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(requester.tracker) == 0
    assert asyncio.all_tasks() == tasks_before
    assert metric("switchboard_correlation_cancelled_total", target="svc.silent") == (
        cancelled_before + 1
    )


async def test_pending_limit_rejects_at_once(nats_client: NATS) -> None:
    await nats_client.subscribe("svc.silent")
    async with Requester(nats_client, max_pending=5) as small:
        waiting = [
            asyncio.create_task(
                small.request(
                    "svc.silent", b"", correlation_id=f"conv-u-{i}", deadline=Deadline.after(30)
                )
            )
            for i in range(5)
        ]
        await eventually(lambda: len(small.tracker) == 5)
        before = metric("switchboard_correlation_rejected_total", reason="overloaded")
        with pytest.raises(OverloadedError, match="5 requests are already pending"):
            await small.request(
                "svc.silent", b"", correlation_id="conv-u-6", deadline=Deadline.after(30)
            )
        assert metric("switchboard_correlation_rejected_total", reason="overloaded") == before + 1
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        assert len(small.tracker) == 0


async def test_pending_lists_what_waits(nats_client: NATS, requester: Requester) -> None:
    await nats_client.subscribe("svc.silent")
    task = asyncio.create_task(
        requester.request(
            "svc.silent", b"", correlation_id="conv-dbg-1", deadline=Deadline.after(30)
        )
    )
    await eventually(lambda: len(requester.tracker) == 1)
    [info] = requester.pending()
    assert (info.correlation_id, info.target, info.phase, info.stream) == (
        "conv-dbg-1",
        "svc.silent",
        "queued",
        False,
    )
    assert 0 < info.remaining_s <= 30
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_pending_gauge_follows_the_tracker(nats_client: NATS, requester: Requester) -> None:
    await nats_client.subscribe("svc.gauge")
    tasks = [
        asyncio.create_task(
            requester.request(
                "svc.gauge", b"", correlation_id=f"conv-g-{i}", deadline=Deadline.after(30)
            )
        )
        for i in range(3)
    ]
    await eventually(lambda: metric("switchboard_correlation_pending", target="svc.gauge") == 3)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert metric("switchboard_correlation_pending", target="svc.gauge") == 0


async def test_error_reply_raises_remote_error_with_its_code(
    nats_client: NATS, requester: Requester
) -> None:
    async def fail(msg: Msg) -> None:
        await nats_client.publish(
            msg.reply,
            b'{"error": {"code": "agent_error", "message": "Cannot divide by zero."}}',
            headers={h.ERROR: "agent_error", h.KIND: "final"},
        )

    await nats_client.subscribe("svc.fail", cb=fail)
    with pytest.raises(RemoteError) as caught:
        await requester.request(
            "svc.fail", b"", correlation_id="conv-u-1", deadline=Deadline.after(5)
        )
    assert caught.value.code is ErrorCode.AGENT_ERROR
    assert str(caught.value) == "Cannot divide by zero."
    assert caught.value.correlation_id == "conv-u-1"


async def test_plain_replies_without_headers_count_as_final(
    nats_client: NATS, requester: Requester
) -> None:
    async def plain(msg: Msg) -> None:
        await msg.respond(b"pong")

    await nats_client.subscribe("svc.plain", cb=plain)
    msg = await requester.request(
        "svc.plain", b"ping", correlation_id="c-1", deadline=Deadline.after(5)
    )
    assert msg.data == b"pong"


async def test_stream_yields_progress_then_final(nats_client: NATS, requester: Requester) -> None:
    async def chatty(msg: Msg) -> None:
        assert msg.headers is not None and msg.headers[h.PROGRESS] == "1"
        for i in range(3):
            await nats_client.publish(msg.reply, f"step {i}".encode(), headers={h.KIND: "progress"})
        await nats_client.publish(msg.reply, b"done", headers={h.KIND: "final"})

    await nats_client.subscribe("svc.chatty", cb=chatty)
    async with requester.replies(
        "svc.chatty", b"", correlation_id="c-s", deadline=Deadline.after(5)
    ) as replies:
        got = [(m.headers or {}).get(h.KIND, "") + ":" + m.data.decode() async for m in replies]
    assert got == ["progress:step 0", "progress:step 1", "progress:step 2", "final:done"]
    assert len(requester.tracker) == 0


async def test_leaving_a_stream_early_cancels_it(nats_client: NATS, requester: Requester) -> None:
    async def endless(msg: Msg) -> None:
        await nats_client.publish(msg.reply, b"first", headers={h.KIND: "progress"})

    await nats_client.subscribe("svc.endless", cb=endless)
    async with requester.replies(
        "svc.endless", b"", correlation_id="c-e", deadline=Deadline.after(30)
    ) as replies:
        async for msg in replies:
            assert msg.data == b"first"
            break
    assert len(requester.tracker) == 0


async def test_nobody_accepting_is_detected_before_the_deadline(
    nats_client: NATS, requester: Requester
) -> None:
    await nats_client.subscribe("svc.blackhole")  # receives, never acknowledges
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError) as caught:
        await requester.request(
            "svc.blackhole",
            b"",
            correlation_id="c-na",
            deadline=Deadline.after(30),
            options=RequestOptions(heartbeat=0.1, accept_timeout=0.3),
        )
    assert caught.value.phase is TimeoutPhase.NOT_ACCEPTED
    assert "no worker accepted" in str(caught.value)
    assert time.monotonic() - started < 5.0


async def test_a_worker_that_goes_silent_is_detected(
    nats_client: NATS, requester: Requester
) -> None:
    async def accept_then_vanish(msg: Msg) -> None:
        await nats_client.publish(msg.reply, b"", headers={h.KIND: "accepted"})

    await nats_client.subscribe("svc.vanish", cb=accept_then_vanish)
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError) as caught:
        await requester.request(
            "svc.vanish",
            b"",
            correlation_id="c-si",
            deadline=Deadline.after(30),
            options=RequestOptions(heartbeat=0.1, accept_timeout=10, silence_timeout=0.4),
        )
    assert caught.value.phase is TimeoutPhase.SILENT
    assert "went silent" in str(caught.value)
    # Noticed after the silence, long before the accept timeout or the deadline.
    assert 0.35 <= time.monotonic() - started < 5.0


async def test_close_refuses_new_requests_and_fails_pending_ones(nats_client: NATS) -> None:
    await nats_client.subscribe("svc.silent")
    requester = Requester(nats_client)
    await requester.start()
    task = asyncio.create_task(
        requester.request("svc.silent", b"", correlation_id="c-shut", deadline=Deadline.after(30))
    )
    await eventually(lambda: len(requester.tracker) == 1)
    started = time.monotonic()
    await requester.close(grace=0.2)
    with pytest.raises(ShuttingDownError, match="c-shut"):
        await task
    assert time.monotonic() - started < 5.0
    with pytest.raises(ShuttingDownError):
        await requester.request(
            "svc.silent", b"", correlation_id="c-late", deadline=Deadline.after(1)
        )
    await requester.close()  # idempotent
    # restartable
    await requester.start()
    await echo_responder(nats_client, "svc.echo")
    msg = await requester.request(
        "svc.echo", b"again", correlation_id="c-again", deadline=Deadline.after(5)
    )
    assert json.loads(msg.data)["echo"] == "again"
    await requester.close()


async def test_close_lets_requests_finish_within_the_grace_period(nats_client: NATS) -> None:
    await echo_responder(nats_client, "svc.slowish", delay=0.3)
    requester = Requester(nats_client)
    await requester.start()
    task = asyncio.create_task(
        requester.request(
            "svc.slowish", b"ok", correlation_id="c-grace", deadline=Deadline.after(30)
        )
    )
    await eventually(lambda: len(requester.tracker) == 1)
    await requester.close(grace=10)
    msg = await task
    assert json.loads(msg.data)["echo"] == "ok"
