"""Heartbeats cost messages per requester, not per request.

A worker holding many slow requests of one requester (the orchestrator's hundreds
of agent calls, each waiting seconds on a model) says "still working on these" in
one message per tick: a batch sent to one of their reply subjects, naming the
others' tokens. The requester's tracker keeps every named request alive. A client
that does not say it reads batches (the NATS CLI, nats.js) gets its own
``accepted`` and ``heartbeat`` messages, as before.
"""

from __future__ import annotations

import asyncio

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from switchboard.orchestrator.core import RequestOptions
from switchboard.orchestrator.core import headers as h
from switchboard.orchestrator.core.deadline import Deadline
from switchboard.orchestrator.core.endpoint import Request
from switchboard.orchestrator.core.requester import Requester
from switchboard.orchestrator.runtime import EmbeddedNatsServer
from tests.core.conftest import Serve

REQUESTS = 40
WORK_S = 1.2
TICK_S = 0.1
BEAT_S = 0.2


async def _spy(url: str, subject: str) -> tuple[NATS, list[Msg]]:
    seen: list[Msg] = []
    nc = await nats.connect(url)

    async def record(msg: Msg) -> None:
        seen.append(msg)

    await nc.subscribe(subject, cb=record)
    await nc.flush()
    return nc, seen


async def test_many_slow_requests_of_one_requester_share_their_heartbeats(
    nats_server: EmbeddedNatsServer, requester: Requester, serve: Serve
) -> None:
    async def slow(request: Request) -> bytes:
        await asyncio.sleep(WORK_S)
        return request.data

    await serve(slow, heartbeat_tick=TICK_S)
    spy, seen = await _spy(nats_server.url, "_INBOX.>")
    try:
        options = RequestOptions(heartbeat=BEAT_S, accept_timeout=1.0, silence_timeout=0.6)
        replies = await asyncio.gather(
            *(
                requester.request(
                    "svc.test",
                    str(i).encode(),
                    correlation_id=f"c-{i}",
                    deadline=Deadline.after(30),
                    options=options,
                )
                for i in range(REQUESTS)
            )
        )
        await spy.flush()
    finally:
        await spy.close()
    # Every request lived through silences far longer than silence_timeout / 2 ...
    assert sorted(int(r.data) for r in replies) == list(range(REQUESTS))
    beats = [m for m in seen if (m.headers or {}).get(h.KIND) in ("accepted", "heartbeat")]
    finals = [m for m in seen if (m.headers or {}).get(h.KIND) == "final"]  # not probes
    assert len(finals) == REQUESTS
    # ... kept alive by about one message per tick for all of them, not one per request
    # per beat (40 requests x (1 accepted + 5 heartbeats) = 240 one by one).
    ticks = WORK_S / TICK_S
    assert 0 < len(beats) <= 2 * ticks, len(beats)
    named = {token for m in beats for token in m.data.decode().split()}
    tokens = {m.subject.rsplit(".", 1)[1] for m in finals}
    assert tokens <= named  # every request was named in some batch


async def test_a_client_that_does_not_read_batches_gets_its_own_heartbeats(
    nats_client: NATS, serve: Serve
) -> None:
    async def slow(request: Request) -> bytes:
        await asyncio.sleep(0.6)
        return b"done"

    await serve(slow, heartbeat_tick=0.05)
    inboxes = [nats_client.new_inbox() for _ in range(3)]
    subs = [await nats_client.subscribe(inbox) for inbox in inboxes]
    for inbox in inboxes:  # plain requests, as the NATS CLI or nats.js would send them
        await nats_client.publish("svc.test", b"", reply=inbox, headers={h.HEARTBEAT: "100"})
    for sub in subs:
        kinds: list[str | None] = []
        while not kinds or kinds[-1] != "final":
            msg = await sub.next_msg(timeout=5)
            kinds.append((msg.headers or {}).get(h.KIND, "final"))
            if kinds[-1] != "final":
                assert msg.data == b""  # nothing to parse: a beat for this request alone
        assert kinds[0] == "accepted"
        assert kinds.count("heartbeat") >= 2
        await sub.unsubscribe()
