"""The Requester's signatures: one absolute deadline, one options struct."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from switchboard.orchestrator.core import Deadline, RequestOptions
from switchboard.orchestrator.core import headers as h
from switchboard.orchestrator.core.requester import Requester
from tests.helpers import eventually


async def header_echo(nc: NATS, subject: str, body: bytes = b"ok") -> list[dict[str, str]]:
    """A responder that keeps the headers of every request it gets and answers ``body``."""
    seen: list[dict[str, str]] = []

    async def reply(msg: Msg) -> None:
        seen.append(dict(msg.headers or {}))
        await msg.respond(body)

    await nc.subscribe(subject, cb=reply)
    await nc.flush()
    return seen


@pytest.mark.parametrize("method", ["request", "call", "stream"])
def test_a_request_takes_a_deadline_and_one_options_struct(method: str) -> None:
    keywords = [
        name
        for name, p in inspect.signature(getattr(Requester, method)).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert keywords == ["correlation_id", "deadline", "options"]


async def test_the_deadline_travels_to_the_worker_as_given(
    nats_client: NATS, requester: Requester
) -> None:
    seen = await header_echo(nats_client, "svc.hdr")
    deadline = Deadline.after(3)
    await requester.request("svc.hdr", b"", correlation_id="c-d", deadline=deadline)
    assert 2_500 < int(seen[0][h.TIMEOUT]) <= 3_000  # the milliseconds left when it was sent
    assert seen[0][h.CORRELATION_ID] == "c-d"


async def test_a_request_without_a_deadline_gets_the_default_timeout(
    nats_client: NATS,
) -> None:
    seen = await header_echo(nats_client, "svc.hdr")
    async with Requester(nats_client, default_timeout=7.0) as requester:
        await requester.request("svc.hdr", b"", correlation_id="c-default")
    assert 6_500 < int(seen[0][h.TIMEOUT]) <= 7_000


async def test_the_options_reach_the_wire_and_the_tracker(
    nats_client: NATS, requester: Requester
) -> None:
    seen: list[dict[str, str]] = []
    release = asyncio.Event()

    async def hold(msg: Msg) -> None:
        seen.append(dict(msg.headers or {}))
        await nats_client.publish(msg.reply, b"", headers={h.KIND: "accepted"})
        await release.wait()
        await msg.respond(b"ok")

    await nats_client.subscribe("svc.opt", cb=hold)
    options = RequestOptions(target="opt-target", headers={"X-Test": "1"}, heartbeat=0.25)
    task = asyncio.create_task(
        requester.request(
            "svc.opt", b"", correlation_id="c-o", deadline=Deadline.after(10), options=options
        )
    )
    await eventually(lambda: len(seen) == 1)
    [pending] = requester.pending()
    assert pending.target == "opt-target"
    assert seen[0]["X-Test"] == "1"
    assert seen[0][h.HEARTBEAT] == "250"
    assert h.PROGRESS not in seen[0]
    release.set()
    assert (await task).data == b"ok"


async def test_call_encodes_and_decodes_under_the_given_deadline(
    nats_client: NATS, requester: Requester
) -> None:
    seen = await header_echo(nats_client, "svc.call", b'{"answer": 42}')
    deadline = Deadline.after(4)
    reply = await requester.call(
        "svc.call", {"q": 1}, dict[str, int], correlation_id="c-c", deadline=deadline
    )
    assert reply == {"answer": 42}
    assert 3_500 < int(seen[0][h.TIMEOUT]) <= 4_000
