"""A worker sends nothing for a request after its final reply.

An ``accepted`` or ``heartbeat`` that follows the final reply reaches a
requester that has already let the request go: the tracker counts it as an
``unknown`` stray -- the signal meant to reveal forged replies -- under
perfectly normal traffic.
"""

from __future__ import annotations

import asyncio
import random

from nats.aio.client import Client as NATS

from switchboard.orchestrator.core import Deadline, Request, Requester, RequestOptions
from tests.helpers import metric

from .conftest import Serve


async def test_no_heartbeat_or_accepted_follows_a_final_reply(
    nats_client: NATS, requester: Requester, serve: Serve
) -> None:
    rng = random.Random(7)

    async def handler(request: Request) -> bytes:
        await asyncio.sleep(rng.choice((0, 0.001, 0.002, 0.004)))
        return b"done"

    await serve(handler, heartbeat_tick=0.001)
    unknown = metric("switchboard_correlation_stray_replies_total", reason="unknown")
    late = metric("switchboard_correlation_stray_replies_total", reason="late")

    async def one(i: int) -> bytes:
        msg = await requester.request(
            "svc.test",
            b"",
            correlation_id=f"conv-beats-{i}",
            deadline=Deadline.after(10),
            options=RequestOptions(heartbeat=0.001, silence_timeout=5.0),
        )
        return bytes(msg.data)

    for _round in range(10):
        answers = await asyncio.gather(*(one(i) for i in range(100)))
        assert answers == [b"done"] * 100
    await nats_client.flush()
    await asyncio.sleep(0.2)  # anything sent after a final would have arrived by now
    assert metric("switchboard_correlation_stray_replies_total", reason="unknown") == unknown
    assert metric("switchboard_correlation_stray_replies_total", reason="late") == late
