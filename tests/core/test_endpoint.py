"""Serving a subject: concurrency, deadlines, error replies, heartbeats, cancellation, shutdown."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import structlog
from nats.aio.client import Client as NATS

from switchboard.orchestrator.core import RequestOptions
from switchboard.orchestrator.core import headers as h
from switchboard.orchestrator.core.conversation import ConversationRequest
from switchboard.orchestrator.core.deadline import Deadline
from switchboard.orchestrator.core.endpoint import Endpoint, Request
from switchboard.orchestrator.core.errors import (
    AgentError,
    ErrorCode,
    NoRespondersError,
    RemoteError,
    RequestTimeoutError,
    ShuttingDownError,
    SwitchboardError,
    TimeoutPhase,
)
from switchboard.orchestrator.core.requester import Requester
from tests.core.conftest import Serve
from tests.helpers import eventually, metric, served


async def upper(request: Request) -> bytes:
    return request.data.upper()


async def test_a_slow_request_does_not_hold_up_the_next(requester: Requester, serve: Serve) -> None:
    release = asyncio.Event()

    async def handler(request: Request) -> bytes:
        if request.data == b"slow":
            await release.wait()
        return request.data

    await serve(handler)
    slow = asyncio.create_task(
        requester.request("svc.test", b"slow", correlation_id="c-slow", deadline=Deadline.after(30))
    )
    fast = await requester.request(
        "svc.test", b"fast", correlation_id="c-fast", deadline=Deadline.after(5)
    )
    assert fast.data == b"fast"
    assert not slow.done()
    release.set()
    assert (await slow).data == b"slow"


async def test_many_requests_run_concurrently_up_to_the_limit(
    requester: Requester, serve: Serve
) -> None:
    running = 0
    peak = 0

    async def handler(request: Request) -> bytes:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return b"ok"

    await serve(handler, max_concurrency=8)
    replies = await asyncio.gather(
        *(
            requester.request("svc.test", b"", correlation_id=f"c-{i}", deadline=Deadline.after(30))
            for i in range(40)
        )
    )
    assert all(r.data == b"ok" for r in replies)
    assert peak == 8


async def test_expired_work_is_dropped_and_counted(nats_client: NATS, serve: Serve) -> None:
    calls = 0

    async def handler(request: Request) -> bytes:
        nonlocal calls
        calls += 1
        return b"should not run"

    await serve(handler, name="expiry")
    before = metric("switchboard_endpoint_expired_total", endpoint="expiry")
    past = Deadline.after(-1)
    with pytest.raises(TimeoutError):
        await nats_client.request("svc.test", b"", timeout=0.3, headers={h.TIMEOUT: past.header()})
    assert calls == 0
    assert metric("switchboard_endpoint_expired_total", endpoint="expiry") == before + 1


async def test_an_exception_becomes_a_safe_internal_error_reply(
    requester: Requester, serve: Serve
) -> None:
    async def handler(request: Request) -> bytes:
        raise KeyError("secret-db-password")

    endpoint = await serve(handler, name="crashy")
    with (
        structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs,
        pytest.raises(RemoteError) as caught,
    ):
        await requester.request(
            "svc.test", b"", correlation_id="conv-u-42", deadline=Deadline.after(5)
        )
    assert caught.value.code is ErrorCode.INTERNAL
    assert "secret" not in str(caught.value)
    assert "KeyError" not in str(caught.value)
    assert "conv-u-42" in str(caught.value)
    crash = [e for e in logs if e["event"] == "handler crashed"]
    assert crash and crash[0]["correlation_id"] == "conv-u-42"
    assert crash[0]["exc_info"] is True  # the details went to the log
    assert metric("switchboard_endpoint_requests_total", endpoint="crashy", outcome="internal") >= 1
    assert endpoint.stats.num_errors == 1


async def test_an_agent_error_keeps_its_code_and_message(
    requester: Requester, serve: Serve
) -> None:
    async def handler(request: Request) -> bytes:
        raise AgentError("Cannot divide by zero.")

    await serve(handler)
    with pytest.raises(RemoteError) as caught:
        await requester.request("svc.test", b"", correlation_id="c-1", deadline=Deadline.after(5))
    assert caught.value.code is ErrorCode.AGENT_ERROR
    assert str(caught.value) == "Cannot divide by zero."


async def test_garbage_gets_a_bad_request_reply_and_the_service_keeps_serving(
    requester: Requester, serve: Serve
) -> None:
    async def handler(request: Request) -> bytes:
        parsed = request.decode(ConversationRequest)
        return parsed.message.encode()

    await serve(handler)
    for garbage in (b"\x00\xff\xfe", b"", b"[1,2,3]", b'{"user_id": 5}'):
        with pytest.raises(RemoteError) as caught:
            await requester.request(
                "svc.test", garbage, correlation_id="c-bad", deadline=Deadline.after(5)
            )
        assert caught.value.code is ErrorCode.BAD_REQUEST
    good = json.dumps({"correlation_id": "c", "user_id": "u", "message": "hi"}).encode()
    assert (
        await requester.request("svc.test", good, correlation_id="c", deadline=Deadline.after(5))
    ).data == b"hi"


async def test_the_error_names_the_bad_field(requester: Requester, serve: Serve) -> None:
    async def handler(request: Request) -> bytes:
        return request.decode(ConversationRequest).message.encode()

    await serve(handler)
    bad = json.dumps({"correlation_id": "c", "user_id": 5, "message": "hi"}).encode()
    with pytest.raises(RemoteError, match=r"\$\.user_id"):
        await requester.request("svc.test", bad, correlation_id="c", deadline=Deadline.after(5))


async def test_an_oversized_payload_is_refused(requester: Requester, serve: Serve) -> None:
    await serve(upper, max_payload=1000, name="small")
    with pytest.raises(RemoteError) as caught:
        await requester.request(
            "svc.test", b"x" * 5000, correlation_id="c", deadline=Deadline.after(5)
        )
    assert caught.value.code is ErrorCode.TOO_LARGE
    assert "5000 bytes" in str(caught.value)
    assert metric("switchboard_endpoint_rejected_total", endpoint="small", reason="too_large") >= 1
    assert (
        await requester.request("svc.test", b"ok", correlation_id="c", deadline=Deadline.after(5))
    ).data == b"OK"


async def test_a_bad_deadline_header_is_a_bad_request(nats_client: NATS, serve: Serve) -> None:
    await serve(upper)
    msg = await nats_client.request("svc.test", b"", timeout=5, headers={h.TIMEOUT: "tomorrow"})
    assert msg.headers is not None and msg.headers[h.ERROR] == "bad_request"
    assert "Switchboard-Timeout" in json.loads(msg.data)["error"]["message"]


async def test_a_request_from_the_nats_cli_without_headers_works(
    nats_client: NATS, serve: Serve
) -> None:
    await serve(upper)
    msg = await nats_client.request("svc.test", b"plain", timeout=5)
    assert msg.data == b"PLAIN"


async def test_past_capacity_and_backlog_requests_get_overloaded_at_once(
    requester: Requester, serve: Serve
) -> None:
    release = asyncio.Event()

    async def handler(request: Request) -> bytes:
        await release.wait()
        return b"done"

    await serve(handler, max_concurrency=1, max_backlog=2)
    tasks = [
        asyncio.create_task(
            requester.request("svc.test", b"", correlation_id=f"c-{i}", deadline=Deadline.after(30))
        )
        for i in range(20)
    ]
    started = time.monotonic()
    await eventually(lambda: sum(t.done() for t in tasks) >= 15, timeout=5)
    assert time.monotonic() - started < 5
    overloaded = [t for t in tasks if t.done()]
    for task in overloaded:
        error = task.exception()
        assert isinstance(error, RemoteError) and error.code is ErrorCode.OVERLOADED
    release.set()
    rest = await asyncio.gather(*(t for t in tasks if t not in overloaded))
    assert all(r.data == b"done" for r in rest)


async def test_past_the_byte_budget_large_requests_get_overloaded_at_once(
    requester: Requester, serve: Serve
) -> None:
    # Few requests, but large: the count bounds are far away, the byte budget is not.
    release = asyncio.Event()

    async def handler(request: Request) -> bytes:
        await release.wait()
        return b"done"

    await serve(handler, max_concurrency=2, max_backlog=100, max_inflight_bytes=1_000_000)
    tasks = [
        asyncio.create_task(
            requester.request(
                "svc.test", b"x" * 300_000, correlation_id=f"c-{i}", deadline=Deadline.after(30)
            )
        )
        for i in range(6)
    ]
    await eventually(lambda: sum(t.done() for t in tasks) >= 3, timeout=5)
    overloaded = [t for t in tasks if t.done()]
    assert len(overloaded) == 3  # three held (two running, one queued): 900 KB of 1 MB
    for task in overloaded:
        error = task.exception()
        assert isinstance(error, RemoteError) and error.code is ErrorCode.OVERLOADED
        assert "900000 bytes of requests" in str(error)
    release.set()
    rest = await asyncio.gather(*(t for t in tasks if t not in overloaded))
    assert [r.data for r in rest] == [b"done"] * 3
    # With the work done, the budget is free again.
    after = await requester.request(
        "svc.test", b"x" * 300_000, correlation_id="c-after", deadline=Deadline.after(30)
    )
    assert after.data == b"done"


async def test_heartbeats_keep_long_work_alive(requester: Requester, serve: Serve) -> None:
    async def handler(request: Request) -> bytes:
        await asyncio.sleep(1.0)
        return b"finally"

    await serve(handler, heartbeat_tick=0.05)
    msg = await requester.request(
        "svc.test",
        b"",
        correlation_id="c-hb",
        deadline=Deadline.after(30),
        options=RequestOptions(heartbeat=0.1, accept_timeout=0.5, silence_timeout=0.5),
    )
    assert msg.data == b"finally"


async def test_accepted_and_heartbeats_are_sent_when_asked(nats_client: NATS, serve: Serve) -> None:
    async def handler(request: Request) -> bytes:
        await asyncio.sleep(0.5)
        return b"done"

    await serve(handler, heartbeat_tick=0.05)
    inbox = nats_client.new_inbox()
    sub = await nats_client.subscribe(inbox)
    await nats_client.publish("svc.test", b"", reply=inbox, headers={h.HEARTBEAT: "100"})
    kinds = []
    while not kinds or kinds[-1] != "final":
        msg = await sub.next_msg(timeout=5)
        kinds.append((msg.headers or {}).get(h.KIND))
    assert kinds[0] == "accepted"
    assert kinds.count("heartbeat") >= 2
    assert kinds[-1] == "final"
    await sub.unsubscribe()


async def test_a_requester_giving_up_cancels_the_handler(
    requester: Requester, serve: Serve
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(request: Request) -> bytes:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return b"never"

    endpoint = await serve(handler, name="cancellable")
    before = metric("switchboard_endpoint_cancelled_total", endpoint="cancellable")
    task = asyncio.create_task(
        requester.request("svc.test", b"", correlation_id="c-cancel", deadline=Deadline.after(60))
    )
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    await asyncio.wait_for(cancelled.wait(), 5)
    await eventually(lambda: endpoint.in_flight == 0)
    assert metric("switchboard_endpoint_cancelled_total", endpoint="cancellable") == before + 1
    await asyncio.gather(task, return_exceptions=True)


async def test_a_timed_out_waiter_cancels_the_handler(requester: Requester, serve: Serve) -> None:
    cancelled = asyncio.Event()

    async def handler(request: Request) -> bytes:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return b"never"

    await serve(handler)
    with pytest.raises(TimeoutError):
        await requester.request(
            "svc.test",
            b"",
            correlation_id="c-to",
            deadline=Deadline.after(30),
            options=RequestOptions(heartbeat=0.1, silence_timeout=0.3, accept_timeout=0.2),
        )
    # accept_timeout (0.2 s) is shorter than the heartbeat tick (0.2 s) here: the waiter gives
    # up before the accept arrives, and its cancel notice stops the handler.
    await asyncio.wait_for(cancelled.wait(), 5)


async def test_a_cancel_notice_from_the_cli_cancels_a_whole_conversation(
    nats_client: NATS, requester: Requester, serve: Serve
) -> None:
    cancelled = 0

    async def handler(request: Request) -> bytes:
        nonlocal cancelled
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return b"never"

    endpoint = await serve(handler)
    tasks = [
        asyncio.create_task(
            requester.request(
                "svc.test", b"", correlation_id="conv-x-1", deadline=Deadline.after(60)
            )
        )
        for _ in range(3)
    ]
    await eventually(lambda: endpoint.in_flight == 3)
    await nats_client.publish("ai.cancel.conv-x-1", b"")  # nats pub ai.cancel.conv-x-1 ''
    await eventually(lambda: cancelled == 3)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_waiter_that_gives_up_withdraws_its_queued_request(
    requester: Requester, serve: Serve
) -> None:
    release = asyncio.Event()
    ran: list[bytes] = []

    async def handler(request: Request) -> bytes:
        ran.append(request.data)
        if request.data == b"hold":
            await release.wait()
        return request.data

    endpoint = await serve(handler, name="withdraw", max_concurrency=1)
    before = metric("switchboard_endpoint_cancelled_total", endpoint="withdraw")
    hold = asyncio.create_task(
        requester.request("svc.test", b"hold", correlation_id="c-hold", deadline=Deadline.after(30))
    )
    try:
        await eventually(lambda: endpoint.in_flight == 1)
        # Queued behind "hold": never accepted, so the waiter gives up -- and may retry
        # elsewhere, because its cancel notice takes the request out of this backlog.
        with pytest.raises(RequestTimeoutError) as caught:
            await requester.request(
                "svc.test",
                b"queued",
                correlation_id="c-queued",
                deadline=Deadline.after(30),
                options=RequestOptions(heartbeat=0.1, accept_timeout=0.3),
            )
        assert caught.value.phase is TimeoutPhase.NOT_ACCEPTED
        assert caught.value.retryable
        await eventually(
            lambda: (
                metric("switchboard_endpoint_cancelled_total", endpoint="withdraw") == before + 1
            )
        )
        release.set()
        assert (await hold).data == b"hold"
    finally:
        release.set()
        await asyncio.gather(hold, return_exceptions=True)
    await eventually(lambda: endpoint.in_flight == 0)
    assert ran == [b"hold"]  # the withdrawn request never ran


async def test_a_conversation_cancel_answers_its_queued_requests(
    nats_client: NATS, requester: Requester, serve: Serve
) -> None:
    release = asyncio.Event()
    ran: list[bytes] = []

    async def handler(request: Request) -> bytes:
        ran.append(request.data)
        await release.wait()
        return request.data

    endpoint = await serve(handler, max_concurrency=1)
    hold = asyncio.create_task(
        requester.request(
            "svc.test", b"hold", correlation_id="conv-other-1", deadline=Deadline.after(30)
        )
    )
    await eventually(lambda: endpoint.in_flight == 1)
    queued = [
        asyncio.create_task(
            requester.request(
                "svc.test", b"q%d" % i, correlation_id="conv-y-1", deadline=Deadline.after(30)
            )
        )
        for i in range(2)
    ]
    try:
        await asyncio.sleep(0.2)  # both are in the endpoint's backlog now
        await nats_client.publish("ai.cancel.conv-y-1", b"")  # nats pub ai.cancel.conv-y-1 ''
        for task in queued:
            with pytest.raises(SwitchboardError) as caught:
                await asyncio.wait_for(task, 5)
            assert caught.value.code is ErrorCode.CANCELLED
            assert "conv-y-1" in str(caught.value)
        release.set()
        assert (await hold).data == b"hold"
    finally:
        release.set()
        await asyncio.gather(hold, *queued, return_exceptions=True)
    await eventually(lambda: endpoint.in_flight == 0)
    assert ran == [b"hold"]


async def test_stop_finishes_in_flight_work_and_fails_the_rest(
    requester: Requester, serve: Serve
) -> None:
    async def handler(request: Request) -> bytes:
        await asyncio.sleep(float(request.data))
        return b"finished " + request.data

    endpoint = await serve(handler, name="stopping")
    quick = asyncio.create_task(
        requester.request("svc.test", b"0.2", correlation_id="c-quick", deadline=Deadline.after(30))
    )
    slow = asyncio.create_task(
        requester.request("svc.test", b"30", correlation_id="c-slow", deadline=Deadline.after(60))
    )
    await eventually(lambda: endpoint.in_flight == 2)
    started = time.monotonic()
    await endpoint.stop(grace=1.0)
    assert time.monotonic() - started < 5
    assert (await quick).data == b"finished 0.2"
    with pytest.raises(RemoteError) as caught:
        await slow
    assert caught.value.code is ErrorCode.SHUTTING_DOWN
    assert endpoint.in_flight == 0
    # After stop, nothing serves the subject any more.
    with pytest.raises(Exception, match="No responders"):
        await requester.request(
            "svc.test", b"0", correlation_id="c-after", deadline=Deadline.after(5)
        )
    await endpoint.stop()  # idempotent
    await endpoint.start()  # restartable
    assert (
        await requester.request("svc.test", b"0", correlation_id="c-re", deadline=Deadline.after(5))
    ).data == (b"finished 0")


async def test_stats_count_requests_and_errors(requester: Requester, serve: Serve) -> None:
    async def handler(request: Request) -> bytes:
        if request.data == b"fail":
            raise AgentError("no")
        return b"yes"

    endpoint = await serve(handler)
    await requester.request("svc.test", b"ok", correlation_id="c", deadline=Deadline.after(5))
    with pytest.raises(RemoteError):
        await requester.request("svc.test", b"fail", correlation_id="c", deadline=Deadline.after(5))
    assert (endpoint.stats.num_requests, endpoint.stats.num_errors) == (2, 1)
    assert endpoint.stats.last_error == "no"
    assert endpoint.stats.processing_time_ns > 0


async def test_progress_is_sent_only_to_requesters_that_want_it(
    requester: Requester, serve: Serve
) -> None:
    sent: list[bool] = []

    async def handler(request: Request) -> bytes:
        sent.append(await request.progress(b"halfway"))
        return b"done"

    await serve(handler)
    await requester.request("svc.test", b"", correlation_id="c", deadline=Deadline.after(5))
    async with requester.replies(
        "svc.test", b"", correlation_id="c", deadline=Deadline.after(5)
    ) as replies:
        got = [m.data async for m in replies]
    assert sent == [False, True]
    assert got == [b"halfway", b"done"]


async def test_shutting_down_requester_raises_clear_error(nats_client: NATS) -> None:
    requester = Requester(nats_client)
    await requester.start()
    await requester.close()
    with pytest.raises(ShuttingDownError, match="shutting down"):
        await requester.request("svc.test", b"", correlation_id="c", deadline=Deadline.after(5))


async def test_an_endpoint_served_for_a_block_is_stopped_when_an_assert_in_it_fails(
    nats_client: NATS, requester: Requester
) -> None:
    served_here: list[Endpoint] = []

    async def failing_test() -> None:
        async with served(nats_client, upper, subject="svc.test", name="test") as endpoint:
            served_here.append(endpoint)
            reply = await requester.request(
                "svc.test", b"up", correlation_id="c", deadline=Deadline.after(5)
            )
            assert reply.data == b"UP"
            raise AssertionError("a failing test")

    with pytest.raises(AssertionError, match="a failing test"):
        await failing_test()
    assert [endpoint.running for endpoint in served_here] == [False]
    with pytest.raises(NoRespondersError):
        await requester.request("svc.test", b"", correlation_id="c", deadline=Deadline.after(5))
