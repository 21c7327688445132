"""Every stop path: a caller cancelled in the middle of a stop gets its CancelledError,
and the stop still leaves nothing running (nats-py's flusher hangs came from stops that
swallowed the caller's cancellation, nats.py issues #469 and #853).

Each test starts a stop in a task, lets it reach a wait inside the stop, cancels the task
and checks both halves of the promise.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from nats.aio.client import Client as NATS

from switchboard.orchestrator.core import (
    AgentCatalog,
    ConnectionEvents,
    CorrelationTracker,
    Deadline,
    Endpoint,
    ErrorCode,
    RemoteError,
    Request,
    Requester,
    RequestOptions,
    ShuttingDownError,
    connect,
)
from switchboard.orchestrator.core.consumer import GlobalMessageConsumer
from switchboard.orchestrator.runtime import EmbeddedNatsServer, Runtime
from tests.helpers import eventually
from tests.support.system import make_settings
from tests.support.tasks import nothing_left_running, running_tasks


async def cancelled_at_its_first_wait(stop: asyncio.Task[None], delay: float = 0.0) -> None:
    """Cancel ``stop`` once it waits (after ``delay`` s); its CancelledError must come out."""
    await asyncio.sleep(delay)  # 0: the stop runs up to its first wait, no further
    assert not stop.done()
    stop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stop


async def forever(request: Request) -> bytes:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


# -- requester close -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grace",
    [0.0, 30.0],
    ids=["while-stopping-the-cancel-sender", "while-giving-pending-requests-grace"],
)
async def test_a_requester_cancelled_while_closing(nats_client: NATS, grace: float) -> None:
    before = running_tasks()
    requester = Requester(nats_client, probe_interval=0.5)
    await requester.start()
    await nats_client.subscribe("stop.silent")  # takes requests, never answers
    pending = asyncio.create_task(
        requester.request(
            "stop.silent", b"", correlation_id="conv-u-1", deadline=Deadline.after(30)
        )
    )
    await eventually(lambda: len(requester.tracker) == 1)
    await cancelled_at_its_first_wait(asyncio.create_task(requester.close(grace)))
    with pytest.raises(ShuttingDownError):
        await pending  # failed at once, not left to its deadline
    assert not requester.consumer.running
    await nothing_left_running(before)


# -- consumer stop -------------------------------------------------------------------------------


async def test_a_consumer_cancelled_while_stopping_its_watchdog(nats_client: NATS) -> None:
    before = running_tasks()
    consumer = GlobalMessageConsumer(nats_client, CorrelationTracker(), probe_interval=0.5)
    await consumer.start()
    await cancelled_at_its_first_wait(asyncio.create_task(consumer.stop()))
    assert not consumer.running
    await nothing_left_running(before)


# -- endpoint stop -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "delay", [0.0, 0.3], ids=["while-unsubscribing", "while-in-flight-work-has-grace"]
)
async def test_an_endpoint_cancelled_while_stopping(
    nats_client: NATS, requester: Requester, delay: float
) -> None:
    before = running_tasks()
    endpoint = Endpoint(nats_client, subject="stop.svc", handler=forever, name="stop")
    await endpoint.start()
    in_flight = asyncio.create_task(
        requester.request(
            "stop.svc",
            b"",
            correlation_id="conv-u-2",
            deadline=Deadline.after(30),
            options=RequestOptions(heartbeat=1.0),
        )
    )
    await eventually(lambda: endpoint.in_flight == 1)
    stop = asyncio.create_task(endpoint.stop(grace=30))
    await cancelled_at_its_first_wait(stop, delay)
    assert endpoint.in_flight == 0  # cut short, not left running
    with pytest.raises(RemoteError) as raised:
        await in_flight
    assert raised.value.code is ErrorCode.SHUTTING_DOWN  # and answered
    await nothing_left_running(before | {in_flight})


# -- catalog stop --------------------------------------------------------------------------------


async def test_a_catalog_cancelled_while_stopping_its_refresh(nats_client: NATS) -> None:
    before = running_tasks()
    catalog = AgentCatalog(nats_client, refresh=0.05, window=0.05)
    await catalog.start()
    await cancelled_at_its_first_wait(asyncio.create_task(catalog.stop()))
    await nothing_left_running(before)


# -- connect (the connection given up) ----------------------------------------------------------


async def test_a_connect_cancelled_while_it_waits_leaves_nothing_running() -> None:
    before = running_tasks()
    with socket.socket() as silent:  # accepts the TCP connection, never speaks NATS
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"nats://127.0.0.1:{silent.getsockname()[1]}"
        connecting = asyncio.create_task(connect(url, name="stop-test", budget=30))
        await cancelled_at_its_first_wait(connecting, 0.3)
        await nothing_left_running(before)


async def test_a_connect_cancelled_while_giving_up_raises_cancelled(
    nats_server: EmbeddedNatsServer,
) -> None:
    # tls:// to a server without TLS fails at once; an error listener that is slow to wind
    # down keeps the attempt (which runs the listeners) alive while connect() stops it.
    before = running_tasks()
    winding_down = asyncio.Event()

    async def slow_listener(exc: Exception) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            winding_down.set()
            await asyncio.sleep(3600)

    events = ConnectionEvents()
    events.on_error.append(slow_listener)
    url = nats_server.url.replace("nats://", "tls://")
    connecting = asyncio.create_task(connect(url, name="stop-test", events=events, budget=30))
    await winding_down.wait()  # connect() has given up and is stopping the attempt
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):  # was ConnectionClosedError: swallowed
        await connecting
    await nothing_left_running(before)


# -- runtime stop --------------------------------------------------------------------------------


async def runtime_serving(nats_server: EmbeddedNatsServer) -> tuple[Runtime, asyncio.Task[None]]:
    runtime = Runtime(
        make_settings(nats_server.url, shutdown_grace=30.0),
        part="test",
        name="stop",
        health=False,
        configure_logs=False,
    )
    await runtime.connect()
    runtime.requester  # noqa: B018  (a part that sends requests: its requester is stopped too)
    runtime.add(Endpoint(runtime.nc, subject="stop.runtime", handler=forever, name="stop-rt"))
    ready = asyncio.Event()

    async def on_ready() -> None:
        ready.set()

    task = asyncio.create_task(runtime.run(on_ready))
    await ready.wait()
    return runtime, task


async def test_a_runtime_cancelled_during_its_shutdown(
    nats_server: EmbeddedNatsServer, requester: Requester
) -> None:
    before = running_tasks()
    runtime, run = await runtime_serving(nats_server)
    in_flight = asyncio.create_task(
        requester.request(
            "stop.runtime", b"", correlation_id="conv-u-3", deadline=Deadline.after(30)
        )
    )
    [endpoint] = runtime._components
    assert isinstance(endpoint, Endpoint)
    await eventually(lambda: endpoint.in_flight == 1)
    runtime.request_stop()
    await cancelled_at_its_first_wait(run, 0.3)  # the endpoint gives its work 30 s of grace
    assert endpoint.in_flight == 0
    assert runtime._nc is None
    assert runtime._requester is not None and not runtime._requester.consumer.running
    with pytest.raises(RemoteError) as raised:
        await in_flight
    assert raised.value.code is ErrorCode.SHUTTING_DOWN  # and answered
    await nothing_left_running(before | {in_flight})


async def test_a_runtime_cancelled_while_stopping_its_orphan_watch(
    nats_server: EmbeddedNatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under `switchboard up` a runtime watches its supervisor; stopping that watch is the
    # first thing it does on the way out.
    monkeypatch.setenv("SWITCHBOARD_SUPERVISOR_PID", str(os.getppid()))
    before = running_tasks()
    runtime, run = await runtime_serving(nats_server)
    runtime.request_stop()
    await cancelled_at_its_first_wait(run)  # was: swallowed, and run() returned normally
    assert runtime._nc is None  # the shutdown still ran
    await nothing_left_running(before)
