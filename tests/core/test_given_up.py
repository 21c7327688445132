"""Work whose requester has already given up is not started when it is finally read.

A worker whose loop was blocked reads a request and its cancel notice late,
perhaps the notice first: the request is then dropped, not run for nobody.
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client as NATS

from switchboard.orchestrator.core import Request, Subjects
from switchboard.orchestrator.core import headers as h
from tests.helpers import eventually, metric

from .conftest import Serve


async def test_a_request_read_after_its_cancel_notice_is_not_run(
    nats_client: NATS, serve: Serve
) -> None:
    ran: list[bytes] = []

    async def handler(request: Request) -> bytes:
        ran.append(request.data)
        return b"done"

    await serve(handler, name="late")
    cancelled = metric("switchboard_endpoint_cancelled_total", endpoint="late")
    inbox = nats_client.new_inbox()
    replies: list[bytes] = []

    async def collect(msg: object) -> None:
        replies.append(msg.data)  # type: ignore[attr-defined]

    await nats_client.subscribe(inbox, cb=collect)
    await nats_client.publish(
        Subjects().cancel("conv-late-1"), b"", headers={h.REPLY_TO_CANCEL: inbox}
    )
    await nats_client.flush()
    await asyncio.sleep(0.1)  # the notice is read first
    await nats_client.publish(
        "svc.test", b"given up", reply=inbox, headers={h.CORRELATION_ID: "conv-late-1"}
    )
    await nats_client.publish(
        "svc.test", b"wanted", reply=nats_client.new_inbox(), headers={h.CORRELATION_ID: "c2"}
    )
    await eventually(lambda: ran == [b"wanted"])
    await asyncio.sleep(0.1)
    assert ran == [b"wanted"]
    assert replies == []
    assert metric("switchboard_endpoint_cancelled_total", endpoint="late") == cancelled + 1
