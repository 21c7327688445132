"""A retry never runs work twice: attached to the attempt in hand, or its reply replayed."""

from __future__ import annotations

import asyncio
import time

import pytest

from switchboard.orchestrator.core import RequestOptions
from switchboard.orchestrator.core.deadline import Deadline
from switchboard.orchestrator.core.endpoint import Request
from switchboard.orchestrator.core.errors import (
    AgentError,
    OverloadedError,
    RemoteError,
    RequestTimeoutError,
    TimeoutPhase,
)
from switchboard.orchestrator.core.replay import ReplayWindow
from switchboard.orchestrator.core.requester import Requester
from tests.core.conftest import Serve
from tests.helpers import eventually, metric


class Counting:
    """A handler that counts its runs and answers with the run's number."""

    def __init__(self, release: asyncio.Event | None = None) -> None:
        self.runs = 0
        self.release = release

    async def __call__(self, request: Request) -> bytes:
        self.runs += 1
        run = self.runs
        if self.release is not None:
            await self.release.wait()
        return f"run {run}".encode()


def attempt(request_id: str | None, **options: float) -> RequestOptions:
    return RequestOptions(request_id=request_id, **options)  # type: ignore[arg-type]


async def test_a_retry_of_work_in_hand_is_attached_and_both_get_its_answer(
    requester: Requester, serve: Serve
) -> None:
    handler = Counting(asyncio.Event())
    await serve(handler)
    attached = metric("switchboard_endpoint_deduplicated_total", endpoint="test", how="attached")
    send = lambda: requester.request(  # noqa: E731
        "svc.test", b"", correlation_id="c-1", deadline=Deadline.after(10), options=attempt("r-1")
    )
    first = asyncio.create_task(send())
    await eventually(lambda: handler.runs == 1)
    retry = asyncio.create_task(send())
    await eventually(
        lambda: (
            metric("switchboard_endpoint_deduplicated_total", endpoint="test", how="attached")
            == attached + 1
        )
    )
    assert handler.release is not None
    handler.release.set()
    assert (await first).data == (await retry).data == b"run 1"
    assert handler.runs == 1


async def test_a_retry_after_the_work_finished_gets_the_stored_reply(
    requester: Requester, serve: Serve
) -> None:
    handler = Counting()
    await serve(handler)
    replayed = metric("switchboard_endpoint_deduplicated_total", endpoint="test", how="replayed")
    replies = [
        await requester.request(
            "svc.test",
            b"",
            correlation_id="c-2",
            deadline=Deadline.after(10),
            options=attempt("r-2"),
        )
        for _ in range(2)
    ]
    assert [r.data for r in replies] == [b"run 1", b"run 1"]
    assert handler.runs == 1
    assert (
        metric("switchboard_endpoint_deduplicated_total", endpoint="test", how="replayed")
        == replayed + 1
    )


async def test_an_error_reply_is_replayed_as_the_same_error(
    requester: Requester, serve: Serve
) -> None:
    runs = 0

    async def failing(request: Request) -> bytes:
        nonlocal runs
        runs += 1
        raise AgentError("The tool refused.")

    await serve(failing)
    for _ in range(2):
        with pytest.raises(RemoteError) as caught:
            await requester.request(
                "svc.test",
                b"",
                correlation_id="c-3",
                deadline=Deadline.after(10),
                options=attempt("r-3"),
            )
        assert caught.value.code.value == "agent_error"
    assert runs == 1


async def test_requests_without_an_id_or_of_another_conversation_run_each_time(
    requester: Requester, serve: Serve
) -> None:
    handler = Counting()
    await serve(handler)
    for cid, request_id in (("c-4", None), ("c-4", None), ("c-5", "r-5"), ("c-6", "r-5")):
        await requester.request(
            "svc.test",
            b"",
            correlation_id=cid,
            deadline=Deadline.after(10),
            options=attempt(request_id),
        )
    assert handler.runs == 4


async def test_a_retry_after_not_accepted_in_time_attaches_to_the_work_it_gave_up_on(
    requester: Requester, serve: Serve
) -> None:
    """The requester read too slowly: the worker had the request, the requester sent again.

    Its cancel notice of the first attempt says a retry may follow, so the work goes on
    and the retry (accepted at once) gets its answer: the handler runs once.
    """
    handler = Counting(asyncio.Event())
    await serve(handler, heartbeat_tick=0.3)  # slow to say ``accepted``
    deadline = Deadline.after(10)
    with pytest.raises(RequestTimeoutError) as caught:
        await requester.request(
            "svc.test",
            b"",
            correlation_id="c-7",
            deadline=deadline,
            options=attempt("r-7", heartbeat=0.1, accept_timeout=0.05),
        )
    assert caught.value.phase is TimeoutPhase.NOT_ACCEPTED
    await asyncio.sleep(0.1)  # the cancel notice arrives first, as in ConversationClient.ask
    retry = asyncio.create_task(
        requester.request(
            "svc.test",
            b"",
            correlation_id="c-7",
            deadline=deadline,
            options=attempt("r-7", heartbeat=0.1, accept_timeout=0.05, silence_timeout=2.0),
        )
    )
    await asyncio.sleep(0.2)  # past the retry's accept timeout: it was accepted at once
    assert handler.release is not None
    handler.release.set()
    assert (await retry).data == b"run 1"
    assert handler.runs == 1


async def test_work_given_up_as_not_accepted_is_cancelled_when_no_retry_comes(
    requester: Requester, serve: Serve
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(request: Request) -> bytes:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return b""

    await serve(handler, heartbeat_tick=0.3, retry_grace=0.3)
    before = metric("switchboard_endpoint_cancelled_total", endpoint="test")
    given_up = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        await requester.request(
            "svc.test",
            b"",
            correlation_id="c-8",
            deadline=Deadline.after(10),
            options=attempt("r-8", heartbeat=0.1, accept_timeout=0.05),
        )
    await started.wait()
    await asyncio.wait_for(cancelled.wait(), 5)
    assert time.monotonic() - given_up >= 0.3  # it waited the grace for a retry
    await eventually(
        lambda: metric("switchboard_endpoint_cancelled_total", endpoint="test") == before + 1
    )


async def test_a_retry_whose_requester_gives_up_leaves_the_first_attempt_running(
    requester: Requester, serve: Serve
) -> None:
    handler = Counting(asyncio.Event())
    await serve(handler)
    send = lambda: requester.request(  # noqa: E731
        "svc.test", b"", correlation_id="c-9", deadline=Deadline.after(10), options=attempt("r-9")
    )
    first = asyncio.create_task(send())
    await eventually(lambda: handler.runs == 1)
    retry = asyncio.create_task(send())
    await asyncio.sleep(0.1)
    retry.cancel()  # its requester's cancel notice detaches it; the work goes on
    with pytest.raises(asyncio.CancelledError):
        await retry
    await asyncio.sleep(0.1)
    assert handler.release is not None
    handler.release.set()
    assert (await first).data == b"run 1"


def test_the_replay_window_keeps_the_newest_replies_within_its_bounds() -> None:
    window: ReplayWindow[object] = ReplayWindow(max_entries=2, max_bytes=10)
    deadline = Deadline.after(60)
    for i in range(3):
        window.store(("c", f"r{i}"), b"abc", None, deadline)
    assert window.replay(("c", "r0")) is None
    assert window.replay(("c", "r1")) is not None
    window.store(("c", "r3"), b"0123456789", None, deadline)  # the bytes bound: alone
    assert len(window) == 1
    window.store(("c", "big"), b"x" * 11, None, deadline)  # larger than the window
    assert window.replay(("c", "big")) is None


def test_a_reply_is_kept_until_its_deadline_plus_the_margin_only() -> None:
    window: ReplayWindow[object] = ReplayWindow()
    window.store(("c", "r"), b"ok", None, Deadline.after(-10))  # deadline and margin gone
    assert window.replay(("c", "r")) is None
    window.store(("c", "r"), b"ok", "agent_error", Deadline.after(0))  # the margin is left
    stored = window.replay(("c", "r"))
    assert stored is not None and stored.error == "agent_error"


async def test_a_refusal_is_not_replayed_the_retry_runs(requester: Requester, serve: Serve) -> None:
    runs = 0

    async def busy_once(request: Request) -> bytes:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise OverloadedError("Busy, try again.")
        return b"done"

    await serve(busy_once)
    send = lambda: requester.request(  # noqa: E731
        "svc.test", b"", correlation_id="c-10", deadline=Deadline.after(10), options=attempt("r-10")
    )
    with pytest.raises(RemoteError):
        await send()
    assert (await send()).data == b"done"


async def test_a_retry_queued_behind_its_first_attempt_gets_the_stored_reply(
    requester: Requester, serve: Serve
) -> None:
    """Both attempts waited in the backlog (the worker at capacity); the first ran."""
    release = asyncio.Event()
    runs: list[bytes] = []

    async def handler(request: Request) -> bytes:
        runs.append(request.data)
        if request.data == b"blocker":
            await release.wait()
        return b"answer to " + request.data

    await serve(handler, max_concurrency=1)
    blocker = asyncio.create_task(
        requester.request("svc.test", b"blocker", correlation_id="c-b", deadline=Deadline.after(10))
    )
    await eventually(lambda: runs == [b"blocker"])
    attempts = [
        asyncio.create_task(
            requester.request(
                "svc.test",
                b"once",
                correlation_id="c-11",
                deadline=Deadline.after(10),
                options=attempt("r-11"),
            )
        )
        for _ in range(2)
    ]
    await asyncio.sleep(0.1)  # both queued
    release.set()
    await blocker
    assert [(await a).data for a in attempts] == [b"answer to once"] * 2
    assert runs == [b"blocker", b"once"]


async def test_a_request_id_reused_for_another_request_is_a_bad_request(
    requester: Requester, serve: Serve
) -> None:
    handler = Counting()
    await serve(handler)
    first = await requester.request(
        "svc.test", b"one", correlation_id="c-12", deadline=Deadline.after(10), options=attempt("r")
    )
    assert first.data == b"run 1"
    with pytest.raises(RemoteError) as caught:
        await requester.request(
            "svc.test",
            b"two",
            correlation_id="c-12",
            deadline=Deadline.after(10),
            options=attempt("r"),
        )
    assert caught.value.code.value == "bad_request"
    assert "already used for a different request" in str(caught.value)
    assert handler.runs == 1


async def test_without_a_retry_grace_work_given_up_runs_on_and_a_late_retry_gets_its_answer(
    requester: Requester, serve: Serve
) -> None:
    handler = Counting(asyncio.Event())
    await serve(handler, heartbeat_tick=0.3, retry_grace=None)
    deadline = Deadline.after(10)
    with pytest.raises(RequestTimeoutError):
        await requester.request(
            "svc.test",
            b"",
            correlation_id="c-13",
            deadline=deadline,
            options=attempt("r-13", heartbeat=0.1, accept_timeout=0.05),
        )
    await asyncio.sleep(0.5)  # past any grace: nobody waits, the work goes on
    assert handler.release is not None
    handler.release.set()
    await asyncio.sleep(0.1)
    late = await requester.request(
        "svc.test", b"", correlation_id="c-13", deadline=deadline, options=attempt("r-13")
    )
    assert late.data == b"run 1"
    assert handler.runs == 1


async def test_a_retry_that_attached_as_its_first_attempt_was_cancelled_still_gets_an_answer(
    requester: Requester, serve: Serve
) -> None:
    """The first attempt's requester gave up (a plain cancel notice) just before the retry
    arrived: the work was already being cancelled, so the retry runs it itself."""
    runs = 0
    cancelling = asyncio.Event()

    async def handler(request: Request) -> bytes:
        nonlocal runs
        runs += 1
        run = runs
        try:
            if run == 1:
                await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelling.set()
            await asyncio.sleep(0.3)  # slow to stop: the retry attaches meanwhile
            raise
        return f"run {run}".encode()

    await serve(handler)
    send = lambda: requester.request(  # noqa: E731
        "svc.test", b"", correlation_id="c-14", deadline=Deadline.after(10), options=attempt("r-14")
    )
    first = asyncio.create_task(send())
    await eventually(lambda: runs == 1)
    first.cancel()  # its requester gives up: the notice carries no request id
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(cancelling.wait(), 5)
    assert (await send()).data == b"run 2"
