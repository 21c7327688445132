"""The inbox subscription heals itself, and traffic survives a nats-server restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import nats
from nats.aio.client import Client as NATS

from switchboard.orchestrator.core import Deadline
from switchboard.orchestrator.core.endpoint import Request
from switchboard.orchestrator.core.errors import SwitchboardError
from switchboard.orchestrator.core.requester import Requester
from switchboard.orchestrator.runtime.embedded import EmbeddedNatsServer
from tests.core.conftest import Serve
from tests.helpers import eventually, metric, served


async def echo(request: Request) -> bytes:
    return json.dumps({"echo": request.data.decode(), "cid": request.correlation_id}).encode()


async def test_a_dead_inbox_subscription_is_recreated(nats_client: NATS, serve: Serve) -> None:
    await serve(echo, subject="svc.echo", queue=None, name="echo")
    async with Requester(nats_client, probe_interval=0.1) as requester:
        assert (
            await requester.request(
                "svc.echo", b"a", correlation_id="c1", deadline=Deadline.after(5)
            )
        ).data
        before = metric("switchboard_consumer_resubscribes_total")
        sub = requester.consumer._sub
        assert sub is not None
        await sub.unsubscribe()  # the subscription dies behind the consumer's back
        await eventually(lambda: metric("switchboard_consumer_resubscribes_total") > before)
        msg = await requester.request(
            "svc.echo", b"b", correlation_id="c2", deadline=Deadline.after(5)
        )
        assert json.loads(msg.data) == {"echo": "b", "cid": "c2"}


async def test_traffic_survives_a_nats_server_kill_and_restart(
    nats_server: EmbeddedNatsServer,
) -> None:
    async with (
        connected(nats_server.url) as worker_nc,
        connected(nats_server.url) as client_nc,
        served(worker_nc, echo, subject="svc.echo", name="echo"),
        Requester(client_nc, probe_interval=0.2) as requester,
    ):
        outcomes: list[str] = []
        stop = asyncio.Event()

        async def traffic(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                cid = f"conv-w{worker}-{n}"
                try:
                    msg = await requester.request(
                        "svc.echo", cid.encode(), correlation_id=cid, deadline=Deadline.after(1.0)
                    )
                except SwitchboardError as exc:
                    outcomes.append(exc.code.value)
                    await asyncio.sleep(0.05)
                else:
                    assert json.loads(msg.data) == {"echo": cid, "cid": cid}  # never mixed
                    outcomes.append("ok")

        workers = [asyncio.create_task(traffic(w)) for w in range(20)]
        try:
            await eventually(lambda: outcomes.count("ok") > 100)
            await asyncio.to_thread(nats_server.kill)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(nats_server.start)
            ok_at_restart = outcomes.count("ok")
            await eventually(lambda: outcomes.count("ok") > ok_at_restart + 100, timeout=30)
        finally:
            stop.set()
            async with asyncio.timeout(5):  # every in-flight request ends by its deadline
                await asyncio.gather(*workers)
        assert set(outcomes) <= {"ok", "timeout", "overloaded", "no_responders", "internal"}
        assert len(requester.tracker) == 0


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[NATS]:
    """A connection that reconnects for ever; closed on the way out, even after a failure."""
    nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    try:
        yield nc
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
